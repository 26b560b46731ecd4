"""Maps of an object: BTF-defined ``.maps``, global data sections, ``.kconfig``.

``init_maps`` builds the definitions at open time (libbpf's
bpf_object__init_maps); ``create_maps`` makes them in the kernel (reusing
``map`` replacements and maps pinned by name), fills global data and freezes
read-only sections, and fills map-in-map slots.
"""

from __future__ import annotations

import errno
import os
import struct

from bpft import btf as B
from bpft.kernel import syscall as sc

from .elfobj import (
    BPF_F_MMAPABLE,
    BPF_F_RDONLY_PROG,
    BPF_MAP_TYPE_ARRAY_OF_MAPS,
    BPF_MAP_TYPE_HASH_OF_MAPS,
    BPF_MAP_TYPE_PROG_ARRAY,
    MAP_BSS,
    MAP_DATA,
    MAP_KCONFIG,
    MAP_RODATA,
    MAP_USER,
    MapDef,
    Object,
    OpenError,
)
from .log import Log

MAP_TYPE_RINGBUF = 27
MAP_TYPE_PERF_EVENT_ARRAY = 4
PIN_NONE, PIN_BY_NAME = 0, 1
_NO_BTF_TYPES = {4, 8, 7, 12, 13, 14, 25, 16, 17, 15, 18, 22, 23}
_KIND_NAMES = {
    B.UNKN: "void",
    B.INT: "int",
    B.PTR: "ptr",
    B.ARRAY: "array",
    B.STRUCT: "struct",
    B.UNION: "union",
    B.ENUM: "enum",
    B.FWD: "fwd",
    B.TYPEDEF: "typedef",
    B.VOLATILE: "volatile",
    B.CONST: "const",
    B.RESTRICT: "restrict",
    B.FUNC: "func",
    B.FUNC_PROTO: "func_proto",
    B.VAR: "var",
    B.DATASEC: "datasec",
    B.FLOAT: "float",
    B.DECL_TAG: "decl_tag",
    B.TYPE_TAG: "type_tag",
    B.ENUM64: "enum64",
}


def kind_str(btf: B.Btf, tid: int) -> str:
    return _KIND_NAMES.get(btf.type(tid).kind if tid else B.UNKN, "unknown")


def page_size() -> int:
    return os.sysconf("SC_PAGE_SIZE")


def _adjust_ringbuf(sz: int) -> int:
    ps = page_size()
    if sz == 0:
        return 0
    if sz % ps == 0 and ((sz // ps) & (sz // ps - 1)) == 0:
        return sz
    mul = 1
    while mul <= (1 << 32) // ps:
        if mul * ps >= sz:
            return mul * ps
        mul <<= 1
    return sz


def _field_int(log: Log, map_name: str, btf: B.Btf, name: str, mtype: int) -> int:
    t = btf.type(btf.resolve(mtype)) if mtype else None
    if t is None or t.kind != B.PTR:
        log.warn(f"map '{map_name}': attr '{name}': expected PTR, got {kind_str(btf, btf.resolve(mtype))}.")
        raise OpenError()
    arr_id = t.size_or_type
    at = btf.type(arr_id) if arr_id else None
    if at is None or at.kind != B.ARRAY:
        log.warn(f"map '{map_name}': attr '{name}': type [{arr_id}] not found or not an array.")
        raise OpenError()
    return at.members[2]


# libbpf's fill_map_from_def() prints what it found in this order, after the whole
# definition (and the inner map's, which follows) has been parsed
_FOUND_ORDER = ("type", "key", "value", "max_entries", "map_flags", "map_extra", "pinning", "numa_node", "inner")


def parse_map_def(
    obj: Object,
    log: Log,
    map_name: str,
    def_id: int,
    strict: bool,
    m: MapDef,
    is_inner: bool,
    found_lines: list[str] | None = None,
) -> MapDef | None:
    btf = obj.btf.btf
    t = btf.type(def_id)
    inner: MapDef | None = None
    found: dict[str, str] = {}
    inner_lines: list[str] = []
    n = len(t.members)
    for i, (name_off, mtype, _boff, _bsz) in enumerate(t.members):
        name = btf.name(name_off)
        if not name:
            log.warn(f"map '{map_name}': invalid field #{i}.")
            raise OpenError()
        if name == "type":
            m.type = _field_int(log, map_name, btf, name, mtype)
            found["type"] = f"found type = {m.type}."
        elif name == "max_entries":
            m.max_entries = _field_int(log, map_name, btf, name, mtype)
            found["max_entries"] = f"found max_entries = {m.max_entries}."
        elif name == "map_flags":
            m.flags = _field_int(log, map_name, btf, name, mtype)
            found["map_flags"] = f"found map_flags = 0x{m.flags:x}."
        elif name == "numa_node":
            m.numa_node = _field_int(log, map_name, btf, name, mtype)
            found["numa_node"] = f"found numa_node = {m.numa_node}."
        elif name in ("key_size", "value_size"):
            sz = _field_int(log, map_name, btf, name, mtype)
            cur = m.key_size if name == "key_size" else m.value_size
            if cur and cur != sz:
                log.warn(f"map '{map_name}': conflicting {name[:-5]} size {cur} != {sz}.")
                raise OpenError()
            if name == "key_size":
                m.key_size = sz
            else:
                m.value_size = sz
            if not found.get(name[:-5], "").startswith(f"found {name[:-5]} ["):
                found[name[:-5]] = f"found {name} = {sz}."
        elif name in ("key", "value"):
            what = name
            pt = btf.type(mtype) if mtype else None
            if pt is None:
                log.warn(f"map '{map_name}': {what} type [{mtype}] not found.")
                raise OpenError()
            if pt.kind != B.PTR:
                log.warn(f"map '{map_name}': {what} spec is not PTR: {kind_str(btf, mtype)}.")
                raise OpenError()
            try:
                sz = btf.size(pt.size_or_type)
            except B.BTFError:
                log.warn(f"map '{map_name}': can't determine {what} size for type [{pt.size_or_type}]: -22.")
                raise OpenError() from None
            cur = m.key_size if what == "key" else m.value_size
            if cur and cur != sz:
                log.warn(f"map '{map_name}': conflicting {what} size {cur} != {sz}.")
                raise OpenError()
            found[what] = f"found {what} [{pt.size_or_type}], sz = {sz}."
            if what == "key":
                m.key_size, m.key_type_id = sz, pt.size_or_type
            else:
                m.value_size, m.value_type_id = sz, pt.size_or_type
        elif name == "values":
            is_mim = m.type in (BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_HASH_OF_MAPS)
            is_pa = m.type == BPF_MAP_TYPE_PROG_ARRAY
            desc = "map-in-map inner" if is_mim else "prog-array value"
            if is_inner:
                log.warn(f"map '{map_name}': multi-level inner maps not supported.")
                raise OpenError()
            if i != n - 1:
                log.warn(f"map '{map_name}': '{name}' member should be last.")
                raise OpenError()
            if not is_mim and not is_pa:
                log.warn(f"map '{map_name}': should be map-in-map or prog-array.")
                raise OpenError()
            if m.value_size and m.value_size != 4:
                log.warn(f"map '{map_name}': conflicting value size {m.value_size} != 4.")
                raise OpenError()
            m.value_size = 4
            at = btf.type(mtype) if mtype else None
            if at is None:
                log.warn(f"map '{map_name}': {desc} type [{mtype}] not found.")
                raise OpenError()
            if at.kind != B.ARRAY or at.members[2]:
                log.warn(f"map '{map_name}': {desc} spec is not a zero-sized array.")
                raise OpenError()
            pid = btf.resolve(at.members[0])
            if not pid or btf.type(pid).kind != B.PTR:
                log.warn(f"map '{map_name}': {desc} def is of unexpected kind {kind_str(btf, pid)}.")
                raise OpenError()
            tid = btf.resolve(btf.type(pid).size_or_type)
            if is_pa:
                if not tid or btf.type(tid).kind != B.FUNC_PROTO:
                    log.warn(f"map '{map_name}': prog-array value def is of unexpected kind {kind_str(btf, tid)}.")
                    raise OpenError()
                continue
            if not tid or btf.type(tid).kind != B.STRUCT:
                log.warn(f"map '{map_name}': map-in-map inner def is of unexpected kind {kind_str(btf, tid)}.")
                raise OpenError()
            inner = MapDef(f"{map_name}.inner")
            parse_map_def(obj, log, f"{map_name}.inner", tid, strict, inner, True, inner_lines)
            m.has_inner_def = True
            found["inner"] = "found inner map definition."
        elif name == "pinning":
            if is_inner:
                log.warn(f"map '{map_name}': inner def can't be pinned.")
                raise OpenError()
            val = _field_int(log, map_name, btf, name, mtype)
            if val not in (PIN_NONE, PIN_BY_NAME):
                log.warn(f"map '{map_name}': invalid pinning value {val}.")
                raise OpenError()
            m.pinning = val
            found["pinning"] = f"found pinning = {val}."
        elif name == "map_extra":
            m.map_extra = _field_int(log, map_name, btf, name, mtype)
            found["map_extra"] = f"found map_extra = 0x{m.map_extra:x}."
        else:
            if strict:
                log.warn(f"map '{map_name}': unknown field '{name}'.")
                raise OpenError()
            log.debug(f"map '{map_name}': ignoring unknown field '{name}'.")
    if m.type == 0:
        log.warn(f"map '{map_name}': map type isn't specified.")
        raise OpenError()
    lines = [f"map '{map_name}': {found[k]}" for k in _FOUND_ORDER if k in found] + inner_lines
    if found_lines is not None:
        found_lines.extend(lines)
    else:
        for line in lines:
            log.debug(line)
    if m.type == MAP_TYPE_RINGBUF:
        m.max_entries = _adjust_ringbuf(m.max_entries)
    return inner


def internal_map_name(obj: Object, real_name: str) -> str:
    sfx_len = max(7, len(real_name))
    if sfx_len >= 16:
        sfx_len = 15
    if "." in real_name[1:]:
        pfx_len = 0
    else:
        pfx_len = min(16 - sfx_len - 1, len(obj.name))
    name = obj.name[:pfx_len] + real_name[:sfx_len]
    return "".join(c if (c.isascii() and c.isalnum()) or c in "_." else "_" for c in name)


def init_maps(obj: Object, log: Log, strict: bool) -> None:
    _init_btf_maps(obj, log, strict)
    for idx in sorted(obj.data_secs):
        kind = obj.data_secs[idx]
        real = obj.sec_names[idx]
        m = MapDef(internal_map_name(obj, real), kind)
        m.real_name = real
        m.sec_idx = idx
        m.type = 2  # array
        m.key_size = 4
        m.value_size = obj.sec_sizes[idx]
        m.max_entries = 1
        m.flags = BPF_F_RDONLY_PROG if kind == MAP_RODATA else 0
        if obj.btf is not None:
            m.value_type_id = _find_by_name(obj.btf.btf, real)
        # bpftool 7.1's libbpf (Linux 6.1's tools/lib/bpf) makes every global data map
        # mmapable; libbpf's later rule (only with a non-static VAR) is not its own
        m.flags |= BPF_F_MMAPABLE
        m.data = obj.sec_data.get(idx, b"\0" * m.value_size) if kind != MAP_BSS else b"\0" * m.value_size
        log.debug(f"map '{m.name}' (global data): at sec_idx {idx}, offset 0, flags {m.flags:x}.")
        obj.maps.append(m)
        log.debug(f'map {len(obj.maps) - 1} is "{m.name}"')
    from .externs import init_kconfig_map

    init_kconfig_map(obj, log)
    _init_struct_ops_maps(obj, log)


def _find_by_name(btf: B.Btf, name: str) -> int:
    for i, t in enumerate(btf.types):
        if btf.name(t.name_off) == name:
            return btf.first_id + i
    return 0


def _init_btf_maps(obj: Object, log: Log, strict: bool) -> None:
    if obj.maps_shndx < 0:
        return
    if obj.btf is None:
        log.warn("DATASEC '.maps' not found.")
        raise OpenError()
    btf = obj.btf.btf
    data = obj.sec_data.get(obj.maps_shndx, b"")
    sec_id = 0
    for i, t in enumerate(btf.types):
        if t.kind == B.DATASEC and btf.name(t.name_off) == ".maps":
            sec_id = btf.first_id + i
            break
    if not sec_id:
        log.warn("DATASEC '.maps' not found.")
        raise OpenError()
    sec = btf.type(sec_id)
    for var_idx, (vid, voff, vsize) in enumerate(sec.members):
        var = btf.type(vid)
        map_name = btf.name(var.name_off)
        if not map_name:
            log.warn(f"map #{var_idx}: empty name.")
            raise OpenError()
        if voff + vsize > len(data):
            log.warn(f"map '{map_name}' BTF data is corrupted.")
            raise OpenError()
        if var.kind != B.VAR:
            log.warn(f"map '{map_name}': unexpected var kind {kind_str(btf, vid)}.")
            raise OpenError()
        if var.members != 1:
            linkage = {0: "static", 2: "extern"}.get(var.members, "unknown")
            log.warn(f"map '{map_name}': unsupported map linkage {linkage}.")
            raise OpenError()
        def_id = btf.resolve(var.size_or_type)
        dt = btf.type(def_id) if def_id else None
        if dt is None or dt.kind != B.STRUCT:
            log.warn(f"map '{map_name}': unexpected def kind {kind_str(btf, def_id)}.")
            raise OpenError()
        if dt.size_or_type > vsize:
            log.warn(f"map '{map_name}': invalid def size.")
            raise OpenError()
        m = MapDef(map_name, MAP_USER)
        m.sec_idx = obj.maps_shndx
        m.sec_offset = voff
        m.var_size = vsize
        m.def_id = def_id
        log.debug(f"map '{map_name}': at sec_idx {m.sec_idx}, offset {voff}.")
        inner = parse_map_def(obj, log, map_name, def_id, strict, m, False)
        if m.pinning == PIN_BY_NAME:
            m.pin_path = f"/sys/fs/bpf/{map_name}"
        if inner is not None:
            m.inner = inner
        obj.maps.append(m)


# --- struct_ops (libbpf 1.1: the maps are created, never registered, by bpftool prog load) ---

MAP_TYPE_STRUCT_OPS = 26
PROG_TYPE_STRUCT_OPS = 27
STRUCT_OPS_VALUE_PREFIX = "bpf_struct_ops_"


def _init_struct_ops_maps(obj: Object, log: Log) -> None:
    """libbpf's bpf_object__init_struct_ops_maps(): one map per VAR of DATASEC .struct_ops."""
    if obj.st_ops_shndx < 0:
        return
    btf = obj.btf.btf if obj.btf is not None else None
    sec_id = _find_by_name(btf, ".struct_ops") if btf is not None else 0
    if not sec_id or btf.type(sec_id).kind != B.DATASEC:
        log.warn("struct_ops init: DATASEC .struct_ops not found")
        raise OpenError()
    data = obj.sec_data.get(obj.st_ops_shndx, b"")
    for vid, voff, _vsize in btf.type(sec_id).members:
        var_name = btf.name(btf.type(vid).name_off)
        tid = btf.resolve(vid if btf.type(vid).kind != B.VAR else btf.type(vid).size_or_type)
        t = btf.type(tid) if tid else None
        tname = btf.name(t.name_off) if t is not None else ""
        if not tname:
            log.warn("struct_ops init: anonymous type is not supported")
            raise OpenError()
        if t.kind != B.STRUCT:
            log.warn(f"struct_ops init: {tname} is not a struct")
            raise OpenError()
        m = MapDef(var_name)
        m.sec_idx, m.sec_offset = obj.st_ops_shndx, voff
        m.type, m.key_size, m.value_size, m.max_entries = MAP_TYPE_STRUCT_OPS, 4, t.size_or_type, 1
        if voff + t.size_or_type > len(data):
            log.warn(f"struct_ops init: var {var_name} is beyond the end of DATASEC .struct_ops")
            raise OpenError()
        m.data = data[voff : voff + t.size_or_type]
        m.st_tname, m.st_type_id, m.st_progs = tname, tid, {}
        obj.maps.append(m)
        log.debug(f"struct_ops init: struct {tname}(type_id={tid}) {var_name} found at offset {voff}")


def _is_func_ptr(btf, tid: int) -> bool:
    tid = btf.resolve(tid)
    if not tid or btf.type(tid).kind != B.PTR:
        return False
    tid = btf.resolve(btf.type(tid).size_or_type)
    return bool(tid) and btf.type(tid).kind == B.FUNC_PROTO


def collect_st_ops_relos(obj: Object, data: bytes, log: Log) -> None:
    """libbpf's bpf_object__collect_st_ops_relos(): which program fills which func ptr."""
    from .elfobj import find_prog_by_sec_insn
    from .elfread import read_rels

    btf = obj.btf.btf
    for r_offset, sym_idx, _rtype in read_rels(data):
        if sym_idx >= len(obj.syms):
            log.warn(f"struct_ops reloc: symbol {sym_idx:x} not found")
            raise OpenError()
        sym = obj.syms[sym_idx]
        name = sym.name or "<?>"
        m = next(
            (
                m
                for m in obj.maps
                if m.type == MAP_TYPE_STRUCT_OPS and m.sec_offset <= r_offset < m.sec_offset + m.value_size
            ),
            None,
        )
        if m is None:
            log.warn(f"struct_ops reloc: cannot find map at rel->r_offset {r_offset}")
            raise OpenError()
        moff = r_offset - m.sec_offset
        raw = getattr(obj, "symtab_raw", b"")
        name_off = struct.unpack_from("<I", raw, sym_idx * 24)[0] if len(raw) >= sym_idx * 24 + 4 else 0
        log.debug(
            f"struct_ops reloc {m.name}: for {sym_idx} value {sym.value} shdr_idx {sym.shndx} "
            f"rel->r_offset {r_offset} map->sec_offset {m.sec_offset} name {name_off} ('{name}')"
        )
        if sym.shndx >= 0xFF00:
            log.warn(
                f"struct_ops reloc {m.name}: rel->r_offset {r_offset} shdr_idx {sym.shndx} unsupported non-static function"
            )
            raise OpenError()
        if sym.value % 8:
            log.warn(f"struct_ops reloc {m.name}: invalid target program offset {sym.value}")
            raise OpenError()
        st = btf.type(m.st_type_id)
        idx = next((j for j, mem in enumerate(st.members) if mem[2] == moff * 8), -1)
        if idx < 0:
            log.warn(f"struct_ops reloc {m.name}: cannot find member at moff {moff}")
            raise OpenError()
        mname = btf.name(st.members[idx][0])
        if not _is_func_ptr(btf, st.members[idx][1]):
            log.warn(f"struct_ops reloc {m.name}: cannot relocate non func ptr {mname}")
            raise OpenError()
        prog = find_prog_by_sec_insn(obj, sym.shndx, sym.value // 8)
        if prog is None:
            log.warn(
                f"struct_ops reloc {m.name}: cannot find prog at shdr_idx {sym.shndx} to relocate func ptr {mname}"
            )
            raise OpenError()
        if prog.prog_type != PROG_TYPE_STRUCT_OPS:
            log.warn(f"struct_ops reloc {m.name}: prog {prog.name} is not struct_ops BPF program")
            raise OpenError()
        if not prog.attach_btf_id:
            prog.attach_btf_id, prog.attach_type = m.st_type_id, idx
        if prog.attach_btf_id != m.st_type_id or prog.attach_type != idx:
            log.warn(
                f"struct_ops reloc {m.name}: cannot use prog {prog.name} in sec {prog.sec_name} with type "
                f"{prog.prog_type} attach_btf_id {prog.attach_btf_id} expected_attach_type {prog.attach_type} "
                f"for func ptr {mname}"
            )
            raise OpenError()
        m.st_progs[idx] = prog


def _size(btf, tid: int) -> int:
    """btf__resolve_size(): the type's size, -1 when it has none."""
    try:
        return btf.size(tid)
    except B.BTFError:
        return -1


def init_kern_struct_ops(obj: Object, log: Log) -> None:
    """libbpf's bpf_map__init_kern_struct_ops() for every struct_ops map: the kernel's
    struct and value struct, the value size, and each program's attach_btf_id and
    expected_attach_type (the kernel member's index)."""
    from .vmlinux import kernel_btf

    for m in obj.maps:
        if m.type != MAP_TYPE_STRUCT_OPS:
            continue
        btf = obj.btf.btf
        try:
            kb = kernel_btf()
        except (OSError, B.BTFError) as e:
            log.warn(f"struct_ops init_kern {m.name}: cannot read kernel BTF: {e}")
            raise OpenError() from None
        ktid = kb.find(m.st_tname, B.STRUCT)
        if not ktid:
            log.warn(f"struct_ops init_kern: struct {m.st_tname} is not found in kernel BTF")
            raise OpenError()
        kvtid = kb.find(STRUCT_OPS_VALUE_PREFIX + m.st_tname, B.STRUCT)
        if not kvtid:
            log.warn(f"struct_ops init_kern: struct {STRUCT_OPS_VALUE_PREFIX}{m.st_tname} is not found in kernel BTF")
            raise OpenError()
        kt, kvt = kb.type(ktid), kb.type(kvtid)
        kdm = next((mem for mem in kvt.members if mem[1] == ktid), None)
        if kdm is None:
            log.warn(
                f"struct_ops init_kern: struct {m.st_tname} data is not found in struct "
                f"{STRUCT_OPS_VALUE_PREFIX}{m.st_tname}"
            )
            raise OpenError()
        log.debug(f"struct_ops init_kern {m.name}: type_id:{m.st_type_id} kern_type_id:{ktid} kern_vtype_id:{kvtid}")
        m.value_size = kvt.size_or_type
        m.vmlinux_value_type_id = kvtid
        knames = {kb.name(mem[0]): j for j, mem in enumerate(kt.members)}
        for i, (name_off, mtype, boff, bsz) in enumerate(btf.type(m.st_type_id).members):
            mname = btf.name(name_off)
            kidx = knames.get(mname)
            if kidx is None:
                log.warn(f"struct_ops init_kern {m.name}: Cannot find member {mname} in kernel BTF")
                raise OpenError()
            _kn, kmtype, kboff, kbsz = kt.members[kidx]
            if bsz or kbsz:
                log.warn(f"struct_ops init_kern {m.name}: bitfield {mname} is not supported")
                raise OpenError()
            lt, kmt = btf.resolve(mtype), kb.resolve(kmtype)
            lk, kk = btf.type(lt).kind if lt else B.UNKN, kb.type(kmt).kind if kmt else B.UNKN
            if lk != kk:
                log.warn(f"struct_ops init_kern {m.name}: Unmatched member type {mname} {lk} != {kk}(kernel)")
                raise OpenError()
            if lk == B.PTR:
                prog = m.st_progs.get(i)
                if prog is None:
                    continue
                kf = kb.resolve(kb.type(kmt).size_or_type)
                if not kf or kb.type(kf).kind != B.FUNC_PROTO:
                    log.warn(f"struct_ops init_kern {m.name}: kernel member {mname} is not a func ptr")
                    raise OpenError()
                prog.attach_btf_id, prog.attach_type = ktid, kidx
                log.debug(
                    f"struct_ops init_kern {m.name}: func ptr {mname} is set to prog {prog.name} "
                    f"from data(+{boff // 8}) to kern_data(+{kboff // 8})"
                )
                continue
            msize, ksize = _size(btf, mtype), _size(kb, kmtype)
            if msize < 0 or ksize < 0 or msize != ksize:
                log.warn(f"struct_ops init_kern {m.name}: Error in size of member {mname}: {msize} != {ksize}(kernel)")
                raise OpenError()
            log.debug(
                f"struct_ops init_kern {m.name}: copy {mname} {msize} bytes from data(+{boff // 8}) "
                f"to kern_data(+{kboff // 8})"
            )


def collect_map_relos(obj: Object, data: bytes, log: Log) -> None:
    """.rel.maps: initial values of map-in-map and prog-array slots."""
    btf = obj.btf.btf if obj.btf else None
    for i in range(len(data) // 16):
        r_offset, r_info = struct.unpack_from("<QQ", data, i * 16)
        sym_idx = r_info >> 32
        if sym_idx >= len(obj.syms):
            log.warn(f".maps relo #{i}: symbol {sym_idx} not found")
            raise OpenError()
        sym = obj.syms[sym_idx]
        name = sym.name
        if (
            sym.shndx != obj.maps_shndx
            and sym.shndx != obj.text_shndx
            and not any(p.sec_idx == sym.shndx for p in obj.programs)
        ):
            log.warn(f".maps relo #{i}: '{name}' isn't a BTF-defined map")
            raise OpenError()
        m = next(
            (m for m in obj.maps if m.kind == MAP_USER and m.sec_offset <= r_offset < m.sec_offset + m.var_size),
            None,
        )
        if m is None or btf is None:
            log.warn(f".maps relo #{i}: cannot find map '{name}' at rel->r_offset {r_offset}")
            raise OpenError()
        if m.type == BPF_MAP_TYPE_PROG_ARRAY:
            targ = next((p for p in obj.programs if p.name == name and not p.is_sub), None)
            if targ is None:
                log.warn(f".maps relo #{i}: '{name}' isn't a valid program")
                raise OpenError()
        elif m.type in (BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_HASH_OF_MAPS):
            targ = next((x for x in obj.maps if x.name == name), None)
            if targ is None or sym.shndx != obj.maps_shndx:
                log.warn(f".maps relo #{i}: '{name}' isn't a valid map reference")
                raise OpenError()
        else:
            log.warn(f".maps relo #{i}: map '{m.name}' should be map-in-map or prog-array")
            raise OpenError()
        dt = btf.type(m.def_id)
        if not dt.members or btf.name(dt.members[-1][0]) != "values":
            log.warn(f".maps relo #{i}: '{name}' isn't a BTF-defined map")
            raise OpenError()
        moff = dt.members[-1][2] // 8
        if r_offset - m.sec_offset < moff:
            log.warn(f".maps relo #{i}: map '{m.name}' relo offset too small")
            raise OpenError()
        moff = r_offset - m.sec_offset - moff
        if moff % 8:
            log.warn(f".maps relo #{i}: map '{m.name}' slot is not aligned")
            raise OpenError()
        slot = moff // 8
        while len(m.init_slots) <= slot:
            m.init_slots.append(None)
        m.init_slots[slot] = targ
        kind = "prog" if m.type == BPF_MAP_TYPE_PROG_ARRAY else "map"
        log.debug(f".maps relo #{i}: map '{m.name}' slot [{slot}] points to {kind} '{name}'")


# --- kernel side ------------------------------------------------------------------------


def _create_one(obj: Object, m: MapDef, log: Log, ifindex: int, is_inner: bool = False) -> int:
    inner_fd = 0
    if m.type in (BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_HASH_OF_MAPS):
        if m.inner is None:
            log.warn(f"map '{m.name}': map-in-map without inner map definition")
            raise sc.BpfError(errno.EINVAL, sc.MAP_CREATE)
        if m.inner.fd < 0:
            m.inner.fd = _create_one(obj, m.inner, log, 0, True)
        inner_fd = m.inner.fd
    max_entries = m.max_entries
    if m.type == MAP_TYPE_PERF_EVENT_ARRAY and not max_entries:
        max_entries = _possible_cpus()
    btf_fd = obj.btf_fd if obj.btf_fd >= 0 else 0
    key_id, val_id = m.key_type_id, m.value_type_id
    vmlinux_vid = getattr(m, "vmlinux_value_type_id", 0) if m.type == MAP_TYPE_STRUCT_OPS else 0
    if m.type in _NO_BTF_TYPES or not btf_fd:
        btf_fd, key_id, val_id = 0, 0, 0
    if btf_fd and not (key_id or val_id or vmlinux_vid):
        btf_fd = 0
    kw = dict(
        name=m.name[:15],
        flags=m.flags,
        inner_map_fd=inner_fd,
        numa_node=m.numa_node,
        map_extra=m.map_extra,
        ifindex=ifindex,
        btf_vmlinux_value_type_id=vmlinux_vid,
    )
    try:
        fd = sc.map_create(
            m.type,
            m.key_size,
            m.value_size,
            max_entries,
            btf_fd=btf_fd,
            btf_key_type_id=key_id,
            btf_value_type_id=val_id,
            **kw,
        )
    except sc.BpfError as e:
        if not btf_fd:
            raise
        log.warn(f"Error in bpf_create_map_xattr({m.name}):{e.strerror}({-e.errno}). Retrying without BTF.")
        fd = sc.map_create(m.type, m.key_size, m.value_size, max_entries, **kw)
    return fd


_ncpus: int | None = None


def _possible_cpus() -> int:
    global _ncpus
    if _ncpus is None:
        n = 0
        try:
            with open("/sys/devices/system/cpu/possible") as f:
                for part in f.read().strip().split(","):
                    a, _, b = part.partition("-")
                    n += int(b or a) - int(a) + 1
        except (OSError, ValueError):
            n = os.cpu_count() or 1
        _ncpus = n
    return _ncpus


def _reuse_pinned(obj: Object, m: MapDef, log: Log) -> bool:
    try:
        fd = sc.obj_get(m.pin_path)
    except OSError as e:
        if e.errno == errno.ENOENT:
            log.debug(f"found no pinned map to reuse at '{m.pin_path}'")
            return False
        log.warn(f"couldn't retrieve pinned map '{m.pin_path}': {e.strerror}")
        raise
    from bpft.kernel import info as kinfo

    try:
        info = kinfo.map_info(fd)
    except OSError:
        os.close(fd)
        raise
    if (
        info.type != m.type
        or info.key_size != m.key_size
        or info.value_size != m.value_size
        or info.max_entries != m.max_entries
        or info.map_flags != m.flags
    ):
        os.close(fd)
        log.warn(f"couldn't reuse pinned map at '{m.pin_path}': parameter mismatch")
        raise sc.BpfError(errno.EINVAL, sc.OBJ_GET)
    m.fd = fd
    m.reused = True
    m.pinned = True
    log.debug(f"reused pinned map at '{m.pin_path}'")
    return True


def create_maps(obj: Object, log: Log, ifindex: int = 0) -> None:
    """Create every map (libbpf's bpf_object__create_maps). Raises BpfError; fds are in the defs."""
    for m in obj.maps:
        if m.pin_path and not m.reused:
            _reuse_pinned(obj, m, log)
        if m.fd >= 0:
            log.debug(f"map '{m.name}': skipping creation (preset fd={m.fd})")
        else:
            try:
                m.fd = _create_one(obj, m, log, ifindex if m.type != MAP_TYPE_PERF_EVENT_ARRAY else 0)
            except sc.BpfError as e:
                log.warn(f"map '{m.name}': failed to create: {e.strerror}({-e.errno})")
                raise
            log.debug(f"map '{m.name}': created successfully, fd={m.fd}")
            if m.kind in (MAP_DATA, MAP_RODATA, MAP_BSS, MAP_KCONFIG):
                try:
                    sc.map_update_elem(m.fd, b"\0\0\0\0", bytes(m.data or b"\0" * m.value_size))
                except sc.BpfError as e:
                    log.warn(f"Error setting initial map({m.name}) contents: {e.strerror}")
                    raise
                if m.kind in (MAP_RODATA, MAP_KCONFIG):
                    try:
                        sc.map_freeze(m.fd)
                    except sc.BpfError as e:
                        log.warn(f"Error freezing map({m.name}) as read-only: {e.strerror}")
                        raise
            if m.inner is not None and m.inner.fd >= 0:
                os.close(m.inner.fd)
                m.inner.fd = -1
            if m.type in (BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_HASH_OF_MAPS) and m.init_slots:
                _fill_slots(m, "map", log)
        if m.pin_path and not m.pinned:
            try:
                sc.obj_pin(m.fd, m.pin_path)
            except sc.BpfError as e:
                log.warn(f"map '{m.name}': failed to auto-pin at '{m.pin_path}': {e.strerror}")
                raise
            m.pinned = True
            log.debug(f"pinned map '{m.pin_path}'")


def init_prog_arrays(obj: Object, log: Log) -> None:
    for m in obj.maps:
        if m.type != BPF_MAP_TYPE_PROG_ARRAY or not m.init_slots:
            continue
        _fill_slots(m, "prog", log)


def _fill_slots(m: MapDef, what: str, log: Log) -> None:
    """Write the initial values of a map-in-map (``what`` "map") or prog array ("prog"): slot i = target's fd."""
    for i, target in enumerate(m.init_slots):
        if target is None:
            continue
        try:
            sc.map_update_elem(m.fd, struct.pack("<I", i), struct.pack("<I", target.fd))
        except sc.BpfError as e:
            log.warn(
                f"map '{m.name}': failed to initialize slot [{i}] to {what} '{target.name}' fd={target.fd}: {e.strerror}"
            )
            raise
        log.debug(f"map '{m.name}': slot [{i}] set to {what} '{target.name}' fd={target.fd}")
