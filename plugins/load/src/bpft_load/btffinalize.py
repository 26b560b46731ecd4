"""The open step "finalize BTF": libbpf's bpf_object__finalize_btf on the object's BTF.

Each DATASEC gets its section's size when the compiler left it 0, and its variables
their symbols' offsets and sorted; hidden variables and functions become static.
"""

from __future__ import annotations

from bpft import btf as B

from .elfread import STT_NOTYPE, STT_OBJECT, STV_HIDDEN, STV_INTERNAL
from .log import Log
from .model import ObjectModel, Symbol

BTF_VAR_STATIC, BTF_VAR_GLOBAL_EXTERN = 0, 2
BTF_FUNC_STATIC = 0


def finalize_btf(obj: ObjectModel, log: Log) -> None:
    btf = obj.btf
    if btf is None:
        return
    sec_by_name = {n: i for i, n in obj.sec_names.items()}
    syms_by_name: dict[str, Symbol] = {}
    for s in obj.syms:
        if s.type in (STT_OBJECT, STT_NOTYPE) and s.shndx and s.name:
            syms_by_name.setdefault(s.name, s)
    changed = False
    for tid in range(1, btf.count() + 1):
        if btf.kind(tid) != B.DATASEC:
            continue
        name = btf.name(tid)
        entries = btf.datasec_vars(tid)
        if name not in (".kconfig", ".ksyms"):
            fix_offsets = False
            if btf.size_or_type(tid) == 0:
                idx = sec_by_name.get(name)
                size = obj.sec_sizes.get(idx, 0) if idx is not None else 0
                if not size:
                    log.debug(f"sec '{name}': failed to determine size from ELF: size {size}, err -2")
                    raise log.open_error("Error finalizing .BTF: -2.")
                btf.set_size(tid, size)
                fix_offsets = True
            fixed = []
            for vid, off, sz in entries:
                if btf.kind(vid) != B.VAR:
                    log.debug(f"sec '{name}': unexpected non-VAR type found")
                    raise log.open_error("Error finalizing .BTF: -22.")
                linkage = btf.var_linkage(vid)
                if linkage in (BTF_VAR_STATIC, BTF_VAR_GLOBAL_EXTERN):
                    fixed.append((vid, off, sz))
                    continue
                var_name = btf.name(vid)
                sym = syms_by_name.get(var_name)
                if sym is None:
                    log.debug(f"sec '{name}': failed to find ELF symbol for VAR '{var_name}'")
                    raise log.open_error("Error finalizing .BTF: -2.")
                if fix_offsets:
                    off = sym.value
                if sym.visibility in (STV_INTERNAL, STV_HIDDEN):
                    btf.set_var_linkage(vid, BTF_VAR_STATIC)
                fixed.append((vid, off, sz))
            entries = fixed
        entries.sort(key=lambda e: e[1])
        btf.set_datasec_vars(tid, entries)
        changed = True
    hidden = {p.name for p in obj.functions if p.hidden}
    if hidden:
        for tid in range(1, btf.count() + 1):
            if btf.kind(tid) == B.FUNC and btf.name(tid) in hidden:
                btf.set_func_linkage(tid, BTF_FUNC_STATIC)
                changed = True
    if changed:
        btf.reparse()
