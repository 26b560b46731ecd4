"""The open step "collect externs": ``.kconfig`` variables and ``.ksyms`` kernel symbols,
as libbpf 1.1's bpf_object__collect_externs finds them, lays out the .kconfig values
and rewrites the extern DATASECs of the BTF so the kernel accepts it.

Resolving them against the running kernel is a load step (:mod:`.externresolve`).
"""

from __future__ import annotations

import struct

from bpft import btf as B

from .btfedit import EditableBtf
from .elfread import STB_GLOBAL, STB_WEAK, STT_FUNC, STT_NOTYPE
from .log import Log
from .model import Extern, ExternKind, ObjectModel

BTF_VAR_GLOBAL_ALLOCATED, BTF_VAR_GLOBAL_EXTERN = 1, 2
BTF_FUNC_GLOBAL = 1


def collect_externs(obj: ObjectModel, log: Log) -> None:
    candidates = [
        s
        for s in obj.syms
        if s.shndx == 0 and s.bind in (STB_GLOBAL, STB_WEAK) and s.type in (STT_NOTYPE, STT_FUNC) and s.name
    ]
    log.debug(f"looking for externs among {len(obj.syms)} symbols...")
    if candidates and obj.btf is None:
        raise log.open_error(f"failed to find BTF for extern '{candidates[0].name}': -2")
    if not candidates:
        log.debug("collected 0 externs total")
        return
    btf = obj.btf.btf
    # DATASEC membership of each var/func
    section_of: dict[int, str] = {}
    for t in btf.types:
        if t.kind == B.DATASEC:
            for vid, _o, _s in t.members:
                section_of[vid] = btf.name(t.name_off)
    # the first extern VAR / FUNC of each name (one pass, not one per symbol)
    extern_ids: dict[str, int] = {}
    for i, t in enumerate(btf.types):
        if t.kind in (B.VAR, B.FUNC) and (t.members if t.kind == B.VAR else t.vlen) == BTF_VAR_GLOBAL_EXTERN:
            extern_ids.setdefault(btf.name(t.name_off), btf.first_id + i)
    for sym in candidates:
        tid = extern_ids.get(sym.name, 0)
        if not tid:
            raise log.open_error(f"failed to find BTF for extern '{sym.name}': -2")
        section = section_of.get(tid, "")
        t = btf.type(tid)
        if section == ".kconfig":
            ext = Extern(sym.name, sym, ExternKind.KCONFIG, tid, weak=sym.bind == STB_WEAK)
            value_type = btf.resolve(t.size_or_type)
            ext.type_id = value_type
            try:
                ext.size = btf.size(value_type)
            except B.BTFError:
                raise log.open_error(f"failed to resolve size of extern (kcfg) '{sym.name}': -22") from None
            ext.align = _align(btf, value_type)
            if not ext.align or ext.size <= 0:
                raise log.open_error(f"failed to determine alignment of extern (kcfg) '{sym.name}'")
            ext.kcfg_type = _kcfg_type(btf, value_type)
            if ext.kcfg_type is None:
                raise log.open_error(f"extern (kcfg) '{sym.name}': type is unsupported")
        elif section == ".ksyms":
            ext = Extern(sym.name, sym, ExternKind.KSYM, tid, weak=sym.bind == STB_WEAK)
            if t.kind == B.FUNC:
                ext.is_func = True
                ext.type_id = tid
            else:
                ext.type_id = btf.resolve(t.size_or_type)
                if ext.type_id and btf.type(ext.type_id).kind == B.UNKN:
                    ext.type_id = 0
        else:
            raise log.open_error(f"unrecognized extern section '{section}'")
        obj.externs.append(ext)
    log.debug(f"collected {len(obj.externs)} externs total")
    # libbpf sorts externs by kind, kconfig ones by (alignment desc, size), then by name
    kconfigs = sorted(
        (e for e in obj.externs if e.kind == ExternKind.KCONFIG), key=lambda e: (-e.align, e.size, e.name)
    )
    ksyms = sorted((e for e in obj.externs if e.kind == ExternKind.KSYM), key=lambda e: e.name)
    obj.externs = kconfigs + ksyms
    for i, e in enumerate(ksyms, len(kconfigs)):
        log.debug(f"extern (ksym) #{i}: symbol {e.sym.index}, name {e.name}")
    off = 0
    for i, e in enumerate(kconfigs):
        e.data_off = (off + e.align - 1) // e.align * e.align
        off = e.data_off + e.size
        log.debug(f"extern (kcfg) #{i}: symbol {e.sym.index}, off {e.data_off}, name {e.name}")
    obj.kconfig_size = off
    _rewrite_extern_datasecs(obj, obj.btf, log)


def _rewrite_extern_datasecs(obj: ObjectModel, btf: EditableBtf, log: Log) -> None:
    """.kconfig variables become allocated at their offsets; .ksyms variables ints, and
    kfuncs a placeholder ``dummy_ksym`` variable (the kernel refuses FUNCs in a DATASEC)."""
    ksyms_sec = btf.find(".ksyms", B.DATASEC)
    kconfig_sec = btf.find(".kconfig", B.DATASEC)
    dummy_var = 0
    int_id = 0
    for i, t in enumerate(btf.btf.types):
        if t.kind == B.INT and t.members[2] == 32:
            int_id = btf.btf.first_id + i
            break
    if ksyms_sec and any(btf.kind(v) == B.FUNC for v, _o, _s in btf.datasec_vars(ksyms_sec)):
        dummy_var = btf.add_var("dummy_ksym", int_id, BTF_VAR_GLOBAL_ALLOCATED)
    by_name = {e.name: e for e in obj.externs}
    if kconfig_sec:
        entries = []
        for vid, _o, sz in btf.datasec_vars(kconfig_sec):
            e = by_name.get(btf.name(vid))
            if e is None:
                raise log.open_error(f"failed to find extern definition for BTF var '{btf.name(vid)}'")
            btf.set_var_linkage(vid, BTF_VAR_GLOBAL_ALLOCATED)
            entries.append((vid, e.data_off, sz))
        btf.set_datasec_vars(kconfig_sec, entries)
        btf.set_size(kconfig_sec, obj.kconfig_size)
    if ksyms_sec:
        entries = []
        off = 0
        for vid, _o, _sz in btf.datasec_vars(ksyms_sec):
            if btf.name(vid) not in by_name:
                raise log.open_error(f"failed to find extern definition for BTF var '{btf.name(vid)}'")
            if btf.kind(vid) == B.FUNC:
                proto = btf.size_or_type(vid)
                if proto and btf.kind(proto) == B.FUNC_PROTO:
                    # kfunc prototypes keep their parameters' names: the kernel needs them
                    dummy_name = struct.unpack_from("<I", btf.types, btf.offsets[dummy_var - 1])[0]
                    params = btf.offsets[proto - 1] + 12
                    for j in range(btf.vlen(proto)):
                        name_off, param_type = struct.unpack_from("<II", btf.types, params + 8 * j)
                        if param_type and not name_off:
                            struct.pack_into("<I", btf.types, params + 8 * j, dummy_name)
                btf.set_func_linkage(vid, BTF_FUNC_GLOBAL)
                entries.append((dummy_var, off, 4))
            else:
                btf.set_var_linkage(vid, BTF_VAR_GLOBAL_ALLOCATED)
                struct.pack_into("<I", btf.types, btf.offsets[vid - 1] + 8, int_id)
                entries.append((vid, off, 4))
            off += 4
        btf.set_datasec_vars(ksyms_sec, entries)
        btf.set_size(ksyms_sec, off)
    btf.reparse()


def _align(btf: B.Btf, tid: int) -> int:
    t = btf.type(tid)
    if t.kind in (B.INT, B.ENUM, B.ENUM64, B.FLOAT):
        return min(t.size_or_type, 8) or 1
    if t.kind == B.PTR:
        return 8
    if t.kind == B.ARRAY:
        return _align(btf, btf.resolve(t.members[0]))
    if t.kind in (B.STRUCT, B.UNION):
        return max((_align(btf, btf.resolve(m[1])) for m in t.members), default=1)
    return 0


def _kcfg_type(btf: B.Btf, tid: int) -> str | None:
    t = btf.type(tid)
    name = btf.name(t.name_off)
    if t.kind == B.INT:
        if t.members[0] & B.INT_BOOL:
            return "bool"
        if t.members[0] & B.INT_CHAR or t.size_or_type == 1 and name == "char":
            return "char"
        return "int"
    if t.kind in (B.ENUM, B.ENUM64):
        return "tristate" if name == "libbpf_tristate" else "int"
    if t.kind == B.ARRAY:
        element = btf.type(btf.resolve(t.members[0]))
        if element.kind == B.INT and element.size_or_type == 1:
            return "char_arr"
    return None
