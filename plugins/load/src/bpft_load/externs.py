"""Externs: ``.kconfig`` variables (from the kernel's config) and ``.ksyms``
(typed and typeless kernel variables, kfuncs), as libbpf 1.1 collects and resolves them.
"""

from __future__ import annotations

import os
import struct

from bpft import btf as B

from .elfobj import (
    BPF_F_MMAPABLE,
    BPF_F_RDONLY_PROG,
    MAP_KCONFIG,
    STB_GLOBAL,
    STB_WEAK,
    STT_FUNC,
    STT_NOTYPE,
    Extern,
    MapDef,
    Object,
    OpenError,
)
from .log import Log

BTF_VAR_GLOBAL_ALLOCATED, BTF_VAR_GLOBAL_EXTERN = 1, 2
BTF_FUNC_GLOBAL = 1


def collect_externs(obj: Object, log: Log) -> None:
    cands = [
        s
        for s in obj.syms
        if s.shndx == 0 and s.bind in (STB_GLOBAL, STB_WEAK) and s.type in (STT_NOTYPE, STT_FUNC) and s.name
    ]
    log.debug(f"looking for externs among {len(obj.syms)} symbols...")
    if cands and obj.btf is None:
        log.warn(f"failed to find BTF for extern '{cands[0].name}': -2")
        raise OpenError()
    if not cands:
        log.debug("collected 0 externs total")
        _fixup_btf(obj, log)
        return
    eb = obj.btf
    btf = eb.btf
    # DATASEC membership of each var/func
    sec_of: dict[int, str] = {}
    for t in btf.types:
        if t.kind == B.DATASEC:
            for vid, _o, _s in t.members:
                sec_of[vid] = btf.name(t.name_off)
    # the first extern VAR / FUNC of each name (one pass, not one per symbol)
    extern_ids: dict[str, int] = {}
    for i, t in enumerate(btf.types):
        if t.kind in (B.VAR, B.FUNC) and (t.members if t.kind == B.VAR else t.vlen) == BTF_VAR_GLOBAL_EXTERN:
            extern_ids.setdefault(btf.name(t.name_off), btf.first_id + i)
    for sym in cands:
        tid = extern_ids.get(sym.name, 0)
        if not tid:
            log.warn(f"failed to find BTF for extern '{sym.name}': -2")
            raise OpenError()
        sec = sec_of.get(tid, "")
        t = btf.type(tid)
        if sec == ".kconfig":
            ext = Extern(sym.name, sym, "kconfig", tid)
            vt = btf.resolve(t.size_or_type)
            ext.type_id = vt
            try:
                ext.size = btf.size(vt)
            except B.BTFError:
                log.warn(f"failed to resolve size of extern (kcfg) '{sym.name}': -22")
                raise OpenError() from None
            ext.align = _align(btf, vt)
            if not ext.align or ext.size <= 0:
                log.warn(f"failed to determine alignment of extern (kcfg) '{sym.name}'")
                raise OpenError()
            ext.kcfg_type = _kcfg_type(btf, vt)
            if ext.kcfg_type is None:
                log.warn(f"extern (kcfg) '{sym.name}': type is unsupported")
                raise OpenError()
        elif sec == ".ksyms":
            ext = Extern(sym.name, sym, "ksym", tid)
            if t.kind == B.FUNC:
                ext.is_func = True
                ext.type_id = tid
            else:
                ext.type_id = btf.resolve(t.size_or_type)
                if ext.type_id and btf.type(ext.type_id).kind == B.UNKN:
                    ext.type_id = 0
        else:
            log.warn(f"unrecognized extern section '{sec}'")
            raise OpenError()
        obj.externs.append(ext)
    log.debug(f"collected {len(obj.externs)} externs total")
    # libbpf sorts externs by kind, kconfig ones by (alignment desc, size), then by name
    kc = sorted((e for e in obj.externs if e.kind == "kconfig"), key=lambda e: (-e.align, e.size, e.name))
    ks = sorted((e for e in obj.externs if e.kind == "ksym"), key=lambda e: e.name)
    obj.externs = kc + ks
    for i, e in enumerate(ks, len(kc)):
        log.debug(f"extern (ksym) #{i}: symbol {e.sym.idx}, name {e.name}")
    off = 0
    for i, e in enumerate(kc):
        e.data_off = (off + e.align - 1) // e.align * e.align
        off = e.data_off + e.size
        log.debug(f"extern (kcfg) #{i}: symbol {e.sym.idx}, off {e.data_off}, name {e.name}")
    obj.kconfig_size = off
    # BTF fix-ups of the extern DATASECs
    ks_sec = eb.find(".ksyms", B.DATASEC)
    kc_sec = eb.find(".kconfig", B.DATASEC)
    dummy = 0
    int_id = 0
    for i, t in enumerate(btf.types):
        if t.kind == B.INT and t.members[2] == 32:
            int_id = btf.first_id + i
            break
    if ks_sec and any(eb.kind(v) == B.FUNC for v, _o, _s in eb.datasec_vars(ks_sec)):
        dummy = eb.add_var("dummy_ksym", int_id, BTF_VAR_GLOBAL_ALLOCATED)
    by_name = {e.name: e for e in obj.externs}
    if kc_sec:
        entries = []
        for vid, _o, sz in eb.datasec_vars(kc_sec):
            e = by_name.get(eb.name(vid))
            if e is None:
                log.warn(f"failed to find extern definition for BTF var '{eb.name(vid)}'")
                raise OpenError()
            eb.set_var_linkage(vid, BTF_VAR_GLOBAL_ALLOCATED)
            entries.append((vid, e.data_off, sz))
        eb.set_datasec_vars(kc_sec, entries)
        eb.set_size(kc_sec, off)
    if ks_sec:
        entries = []
        off = 0
        for vid, _o, _sz in eb.datasec_vars(ks_sec):
            if eb.name(vid) not in by_name:
                log.warn(f"failed to find extern definition for BTF var '{eb.name(vid)}'")
                raise OpenError()
            if eb.kind(vid) == B.FUNC:
                proto = eb.size_or_type(vid)
                if proto and eb.kind(proto) == B.FUNC_PROTO:
                    dname = struct.unpack_from("<I", eb.types, eb.offsets[dummy - 1])[0]
                    base = eb.offsets[proto - 1] + 12
                    for j in range(eb.vlen(proto)):
                        n_off, ptype = struct.unpack_from("<II", eb.types, base + 8 * j)
                        if ptype and not n_off:
                            struct.pack_into("<I", eb.types, base + 8 * j, dname)
                eb.set_func_linkage(vid, BTF_FUNC_GLOBAL)
                entries.append((dummy, off, 4))
            else:
                eb.set_var_linkage(vid, BTF_VAR_GLOBAL_ALLOCATED)
                struct.pack_into("<I", eb.types, eb.offsets[vid - 1] + 8, int_id)
                entries.append((vid, off, 4))
            off += 4
        eb.set_datasec_vars(ks_sec, entries)
        eb.set_size(ks_sec, off)
    eb.reparse()
    _fixup_btf(obj, log)


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
        et = btf.type(btf.resolve(t.members[0]))
        if et.kind == B.INT and et.size_or_type == 1:
            return "char_arr"
    return None


def _fixup_btf(obj: Object, log: Log) -> None:
    """libbpf's btf_fixup_datasec and hidden-function linkage, on the object's BTF."""
    eb = obj.btf
    if eb is None:
        return
    sec_by_name = {n: i for i, n in obj.sec_names.items()}
    syms_by_name = {}
    for s in obj.syms:
        if s.type in (1, 0) and s.shndx and s.name:
            syms_by_name.setdefault(s.name, s)
    changed = False
    for tid in range(1, eb.count() + 1):
        if eb.kind(tid) != B.DATASEC:
            continue
        name = eb.name(tid)
        entries = eb.datasec_vars(tid)
        if name not in (".kconfig", ".ksyms"):
            fix_offsets = False
            if eb.size_or_type(tid) == 0:
                idx = sec_by_name.get(name)
                size = obj.sec_sizes.get(idx, 0) if idx is not None else 0
                if not size:
                    log.debug(f"sec '{name}': failed to determine size from ELF: size {size}, err -2")
                    log.warn("Error finalizing .BTF: -2.")
                    raise OpenError()
                eb.set_size(tid, size)
                fix_offsets = True
            new = []
            for vid, off, sz in entries:
                if eb.kind(vid) != B.VAR:
                    log.debug(f"sec '{name}': unexpected non-VAR type found")
                    raise OpenError()
                linkage = eb.var_linkage(vid)
                if linkage in (0, BTF_VAR_GLOBAL_EXTERN):
                    new.append((vid, off, sz))
                    continue
                vname = eb.name(vid)
                sym = syms_by_name.get(vname)
                if sym is None:
                    log.debug(f"sec '{name}': failed to find ELF symbol for VAR '{vname}'")
                    raise OpenError()
                if fix_offsets:
                    off = sym.value
                if sym.vis in (1, 2):
                    eb.set_var_linkage(vid, 0)
                new.append((vid, off, sz))
            entries = new
        entries.sort(key=lambda e: e[1])
        eb.set_datasec_vars(tid, entries)
        changed = True
    hidden = {p.name for p in obj.programs if p.hidden}
    if hidden:
        for tid in range(1, eb.count() + 1):
            if eb.kind(tid) == B.FUNC and eb.name(tid) in hidden:
                eb.set_func_linkage(tid, 0)
                changed = True
    if changed:
        eb.reparse()


def init_kconfig_map(obj: Object, log: Log) -> None:
    if not any(e.kind == "kconfig" for e in obj.externs):
        return
    m = MapDef(".kconfig", MAP_KCONFIG)
    from .maps import internal_map_name

    m.name = internal_map_name(obj, ".kconfig")
    m.real_name = ".kconfig"
    m.type = 2
    m.key_size = 4
    m.value_size = obj.kconfig_size
    m.max_entries = 1
    # an internal map as bpftool 7.1's libbpf makes it: mmapable, announced as global data
    m.flags = BPF_F_RDONLY_PROG | BPF_F_MMAPABLE
    m.sec_idx = obj.symtab_shndx
    m.value_type_id = obj.btf.find(".kconfig", B.DATASEC) if obj.btf else 0
    m.data = bytearray(obj.kconfig_size)
    log.debug(f"map '{m.name}' (global data): at sec_idx {m.sec_idx}, offset 0, flags {m.flags:x}.")
    obj.kconfig_map_idx = len(obj.maps)
    obj.maps.append(m)
    log.debug(f'map {len(obj.maps) - 1} is "{m.name}"')


# --- resolution at load time ----------------------------------------------------------


class _Kconfig:
    """``CONFIG_X=value`` lines, looked up by name (the last line of a name wins)."""

    def __init__(self, text: str):
        self.text = "\n" + text

    def get(self, name: str) -> str | None:
        i = self.text.rfind(f"\n{name}=")
        if i < 0:
            return None
        i += len(name) + 2
        j = self.text.find("\n", i)
        return self.text[i : j if j >= 0 else None].rstrip("\r")


def _read_kconfig() -> _Kconfig:
    """The running kernel's config (/boot/config-RELEASE, else /proc/config.gz), as libbpf reads it.

    Only the names a program asks for are looked up: parsing every line of a
    100 KB config costs milliseconds.
    """
    import zlib

    rel = os.uname().release
    text = ""
    for path in (f"/boot/config-{rel}", "/proc/config.gz"):
        try:
            with open(path, "rb") as f:
                raw = f.read()
            if path.endswith(".gz"):
                raw = zlib.decompress(raw, 16 + zlib.MAX_WBITS)
        except (OSError, zlib.error):
            continue
        text = raw.decode(errors="replace")
        break
    return _Kconfig(text)


def _kernel_version() -> int:
    rel = os.uname().release
    parts = []
    for p in rel.split(".")[:3]:
        digits = ""
        for c in p:
            if not c.isdigit():
                break
            digits += c
        parts.append(int(digits or 0))
    while len(parts) < 3:
        parts.append(0)
    return (parts[0] << 16) | (parts[1] << 8) | min(parts[2], 255)


def resolve_externs(obj: Object, log: Log) -> None:
    if not obj.externs:
        return
    kc = [e for e in obj.externs if e.kind == "kconfig"]
    if kc:
        m = obj.maps[obj.kconfig_map_idx]
        data = m.data
        cfg = None
        from_file = []  # libbpf reports these in the config file's order
        for e in kc:
            if e.name == "LINUX_KERNEL_VERSION":
                struct.pack_into("<I", data, e.data_off, _kernel_version())
                e.is_set = True
                log.debug(f"extern (kcfg) '{e.name}': set to 0x{_kernel_version():x}")
            elif e.name == "LINUX_HAS_BPF_COOKIE" or e.name == "LINUX_HAS_SYSCALL_WRAPPER":
                data[e.data_off] = 1
                e.is_set = True
                log.debug(f"extern (kcfg) '{e.name}': set to 0x1")
            elif e.name.startswith("CONFIG_"):
                if cfg is None:
                    cfg = _read_kconfig()
                v = cfg.get(e.name)
                if v is not None:
                    _set_kcfg(e, data, v, log)
                    from_file.append((cfg.text.rfind(f"\n{e.name}="), f"extern (kcfg) '{e.name}': set to {v}"))
            else:
                log.warn(f"extern (kcfg) '{e.name}': unrecognized virtual extern")
                raise OpenError()
        for _pos, line in sorted(from_file):
            log.debug(line)
        for e in kc:
            if not e.is_set and not e.weak:
                log.warn(f"extern (kcfg) '{e.name}': value not found")
                raise OpenError()
    ks = [e for e in obj.externs if e.kind == "ksym"]
    if ks:
        from .vmlinux import find_kernel_type, kallsyms

        for e in ks:
            if e.is_func or e.type_id:
                kid = find_kernel_type(e.name, B.FUNC if e.is_func else B.VAR)
                if kid:
                    e.kernel_btf_id = kid
                    e.is_set = True
                    if e.is_func:
                        log.debug(f"extern (func ksym) '{e.name}': resolved to kernel [{kid}]")
                    else:
                        log.debug(f"extern (var ksym) '{e.name}': resolved to [{kid}] var {e.name}")
                elif not e.weak:
                    log.warn(
                        f"extern ({'func ' if e.is_func else 'var '}ksym) '{e.name}': not found in kernel or module BTFs"
                    )
                    raise OpenError()
            else:
                addr = kallsyms().get(e.name)
                if addr is not None:
                    e.addr = addr
                    e.is_set = True
                    log.debug(f"extern (ksym) '{e.name}': set to 0x{addr:x}")
                elif not e.weak:
                    log.warn(f"extern (ksym) '{e.name}': not found in kallsyms")
                    raise OpenError()


def _set_kcfg(e: Extern, data: bytearray, v: str, log: Log) -> None:
    t = e.kcfg_type
    if v in ("y", "m", "n") and t in ("bool", "tristate", "char"):
        if t == "bool":
            if v == "m":
                log.warn(f"extern (kcfg) '{e.name}': value '{v}' implies tristate or char type")
                raise OpenError()
            data[e.data_off] = 1 if v == "y" else 0
        elif t == "tristate":
            data[e.data_off] = {"y": 1, "m": 2, "n": 0}[v]
        else:
            data[e.data_off] = ord(v)
        e.is_set = True
        return
    if v.startswith('"'):
        if t != "char_arr":
            log.warn(f"extern (kcfg) '{e.name}': value '{v}' implies char array type")
            raise OpenError()
        s = v.strip('"').encode()[: e.size - 1]
        data[e.data_off : e.data_off + e.size] = s.ljust(e.size, b"\0")
        e.is_set = True
        return
    try:
        n = int(v, 0)
    except ValueError:
        log.warn(f"extern (kcfg) '{e.name}': value '{v}' isn't a valid integer")
        raise OpenError() from None
    if t != "int":
        log.warn(f"extern (kcfg) '{e.name}': value '{v}' implies integer type")
        raise OpenError()
    data[e.data_off : e.data_off + e.size] = (n & ((1 << (8 * e.size)) - 1)).to_bytes(e.size, "little")
    e.is_set = True
