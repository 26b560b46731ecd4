"""The open step "init maps": the map definitions of an object, as libbpf 1.1's
bpf_object__init_maps makes them: BTF-defined maps of ``.maps``, one map per global
data section, the ``.kconfig`` map, one map per ``.struct_ops`` variable. Also the
relocations that give maps their initial slots (``.rel.maps``) and struct_ops
members their programs (``.rel.struct_ops``), collected with the others.

Creating them in the kernel is a load step (:mod:`.mapcreate`).
"""

from __future__ import annotations

import os
import struct

from bpft import btf as B
from bpft.kernel.uapi import MAP_IN_MAP_TYPES, MapType, ProgType

from .elfread import read_rels
from .log import Log
from .model import (
    BPF_F_MMAPABLE,
    BPF_F_RDONLY_PROG,
    ExternKind,
    MapKind,
    MapSpec,
    ObjectModel,
    Pinning,
    ProgramSpec,
    find_prog_by_sec_insn,
)

_MAP_TYPE_VALUES = frozenset(MapType)


def _kind_name(btf: B.Btf, tid: int) -> str:
    return B.kind_name(btf.type(tid).kind if tid else B.UNKN)


def page_size() -> int:
    return os.sysconf("SC_PAGE_SIZE")


def _adjust_ringbuf(size: int) -> int:
    ps = page_size()
    if size == 0:
        return 0
    if size % ps == 0 and ((size // ps) & (size // ps - 1)) == 0:
        return size
    mul = 1
    while mul <= (1 << 32) // ps:
        if mul * ps >= size:
            return mul * ps
        mul <<= 1
    return size


def _field_int(log: Log, map_name: str, btf: B.Btf, name: str, mtype: int) -> int:
    t = btf.type(btf.resolve(mtype)) if mtype else None
    if t is None or t.kind != B.PTR:
        raise log.open_error(
            f"map '{map_name}': attr '{name}': expected PTR, got {_kind_name(btf, btf.resolve(mtype))}."
        )
    array_id = t.size_or_type
    array_type = btf.type(array_id) if array_id else None
    if array_type is None or array_type.kind != B.ARRAY:
        raise log.open_error(f"map '{map_name}': attr '{name}': type [{array_id}] not found or not an array.")
    return array_type.members[2]


# libbpf's fill_map_from_def() prints what it found in this order, after the whole
# definition (and the inner map's, which follows) has been parsed
_FOUND_ORDER = ("type", "key", "value", "max_entries", "map_flags", "map_extra", "pinning", "numa_node", "inner")


def parse_map_def(
    obj: ObjectModel,
    log: Log,
    map_name: str,
    def_id: int,
    strict: bool,
    m: MapSpec,
    is_inner: bool,
    found_lines: list[str] | None = None,
) -> MapSpec | None:
    btf = obj.btf.btf
    t = btf.type(def_id)
    inner: MapSpec | None = None
    found: dict[str, str] = {}
    inner_lines: list[str] = []
    n = len(t.members)
    for i, (name_off, mtype, _boff, _bsz) in enumerate(t.members):
        name = btf.name(name_off)
        if not name:
            raise log.open_error(f"map '{map_name}': invalid field #{i}.")
        if name == "type":
            value = _field_int(log, map_name, btf, name, mtype)
            m.map_type = MapType(value) if value in _MAP_TYPE_VALUES else value
            found["type"] = f"found type = {m.map_type}."
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
            size = _field_int(log, map_name, btf, name, mtype)
            cur = m.key_size if name == "key_size" else m.value_size
            if cur and cur != size:
                raise log.open_error(f"map '{map_name}': conflicting {name[:-5]} size {cur} != {size}.")
            if name == "key_size":
                m.key_size = size
            else:
                m.value_size = size
            if not found.get(name[:-5], "").startswith(f"found {name[:-5]} ["):
                found[name[:-5]] = f"found {name} = {size}."
        elif name in ("key", "value"):
            what = name
            pointer = btf.type(mtype) if mtype else None
            if pointer is None:
                raise log.open_error(f"map '{map_name}': {what} type [{mtype}] not found.")
            if pointer.kind != B.PTR:
                raise log.open_error(f"map '{map_name}': {what} spec is not PTR: {_kind_name(btf, mtype)}.")
            try:
                size = btf.size(pointer.size_or_type)
            except B.BTFError:
                raise log.open_error(
                    f"map '{map_name}': can't determine {what} size for type [{pointer.size_or_type}]: -22."
                ) from None
            cur = m.key_size if what == "key" else m.value_size
            if cur and cur != size:
                raise log.open_error(f"map '{map_name}': conflicting {what} size {cur} != {size}.")
            found[what] = f"found {what} [{pointer.size_or_type}], sz = {size}."
            if what == "key":
                m.key_size, m.key_type_id = size, pointer.size_or_type
            else:
                m.value_size, m.value_type_id = size, pointer.size_or_type
        elif name == "values":
            is_map_in_map = m.map_type in MAP_IN_MAP_TYPES
            is_prog_array = m.map_type == MapType.PROG_ARRAY
            desc = "map-in-map inner" if is_map_in_map else "prog-array value"
            if is_inner:
                raise log.open_error(f"map '{map_name}': multi-level inner maps not supported.")
            if i != n - 1:
                raise log.open_error(f"map '{map_name}': '{name}' member should be last.")
            if not is_map_in_map and not is_prog_array:
                raise log.open_error(f"map '{map_name}': should be map-in-map or prog-array.")
            if m.value_size and m.value_size != 4:
                raise log.open_error(f"map '{map_name}': conflicting value size {m.value_size} != 4.")
            m.value_size = 4
            array_type = btf.type(mtype) if mtype else None
            if array_type is None:
                raise log.open_error(f"map '{map_name}': {desc} type [{mtype}] not found.")
            if array_type.kind != B.ARRAY or array_type.members[2]:
                raise log.open_error(f"map '{map_name}': {desc} spec is not a zero-sized array.")
            pid = btf.resolve(array_type.members[0])
            if not pid or btf.type(pid).kind != B.PTR:
                raise log.open_error(f"map '{map_name}': {desc} def is of unexpected kind {_kind_name(btf, pid)}.")
            tid = btf.resolve(btf.type(pid).size_or_type)
            if is_prog_array:
                if not tid or btf.type(tid).kind != B.FUNC_PROTO:
                    raise log.open_error(
                        f"map '{map_name}': prog-array value def is of unexpected kind {_kind_name(btf, tid)}."
                    )
                continue
            if not tid or btf.type(tid).kind != B.STRUCT:
                raise log.open_error(
                    f"map '{map_name}': map-in-map inner def is of unexpected kind {_kind_name(btf, tid)}."
                )
            inner = MapSpec(f"{map_name}.inner")
            parse_map_def(obj, log, f"{map_name}.inner", tid, strict, inner, True, inner_lines)
            m.has_inner_def = True
            found["inner"] = "found inner map definition."
        elif name == "pinning":
            if is_inner:
                raise log.open_error(f"map '{map_name}': inner def can't be pinned.")
            val = _field_int(log, map_name, btf, name, mtype)
            if val not in (Pinning.NONE, Pinning.BY_NAME):
                raise log.open_error(f"map '{map_name}': invalid pinning value {val}.")
            m.pinning = Pinning(val)
            found["pinning"] = f"found pinning = {val}."
        elif name == "map_extra":
            m.map_extra = _field_int(log, map_name, btf, name, mtype)
            found["map_extra"] = f"found map_extra = 0x{m.map_extra:x}."
        else:
            if strict:
                raise log.open_error(f"map '{map_name}': unknown field '{name}'.")
            log.debug(f"map '{map_name}': ignoring unknown field '{name}'.")
    if m.map_type == MapType.UNSPEC:
        raise log.open_error(f"map '{map_name}': map type isn't specified.")
    lines = [f"map '{map_name}': {found[k]}" for k in _FOUND_ORDER if k in found] + inner_lines
    if found_lines is not None:
        found_lines.extend(lines)
    else:
        for line in lines:
            log.debug(line)
    if m.map_type == MapType.RINGBUF:
        m.max_entries = _adjust_ringbuf(m.max_entries)
    return inner


def internal_map_name(obj: ObjectModel, real_name: str) -> str:
    sfx_len = max(7, len(real_name))
    if sfx_len >= 16:
        sfx_len = 15
    if "." in real_name[1:]:
        pfx_len = 0
    else:
        pfx_len = min(16 - sfx_len - 1, len(obj.name))
    name = obj.name[:pfx_len] + real_name[:sfx_len]
    return "".join(c if (c.isascii() and c.isalnum()) or c in "_." else "_" for c in name)


def init_maps(obj: ObjectModel, log: Log, strict: bool) -> None:
    """libbpf's bpf_object__init_maps: user maps, global data, .kconfig, struct_ops, in that order."""
    _init_btf_maps(obj, log, strict)
    _init_global_data_maps(obj, log)
    _init_kconfig_map(obj, log)
    _init_struct_ops_maps(obj, log)


def _init_global_data_maps(obj: ObjectModel, log: Log) -> None:
    for idx in sorted(obj.data_secs):
        kind = obj.data_secs[idx]
        real = obj.sec_names[idx]
        m = MapSpec(internal_map_name(obj, real), kind, real_name=real, map_type=MapType.ARRAY, max_entries=1)
        m.sec_idx = idx
        m.key_size = 4
        m.value_size = obj.sec_sizes[idx]
        m.flags = BPF_F_RDONLY_PROG if kind == MapKind.RODATA else 0
        if obj.btf is not None:
            m.value_type_id = _find_by_name(obj.btf.btf, real)
        # bpftool 7.1's libbpf (Linux 6.1's tools/lib/bpf) makes every global data map
        # mmapable; libbpf's later rule (only with a non-static VAR) is not its own
        m.flags |= BPF_F_MMAPABLE
        m.data = obj.sec_data.get(idx, b"\0" * m.value_size) if kind != MapKind.BSS else b"\0" * m.value_size
        log.debug(f"map '{m.name}' (global data): at sec_idx {idx}, offset 0, flags {m.flags:x}.")
        obj.map_list.append(m)
        log.debug(f'map {len(obj.map_list) - 1} is "{m.name}"')


def _init_kconfig_map(obj: ObjectModel, log: Log) -> None:
    if not any(e.kind == ExternKind.KCONFIG for e in obj.externs):
        return
    m = MapSpec(internal_map_name(obj, ".kconfig"), MapKind.KCONFIG, real_name=".kconfig", map_type=MapType.ARRAY)
    m.key_size = 4
    m.value_size = obj.kconfig_size
    m.max_entries = 1
    # an internal map as bpftool 7.1's libbpf makes it: mmapable, announced as global data
    m.flags = BPF_F_RDONLY_PROG | BPF_F_MMAPABLE
    m.sec_idx = obj.symtab_shndx
    m.value_type_id = obj.btf.find(".kconfig", B.DATASEC) if obj.btf else 0
    m.data = bytearray(obj.kconfig_size)
    log.debug(f"map '{m.name}' (global data): at sec_idx {m.sec_idx}, offset 0, flags {m.flags:x}.")
    obj.kconfig_map_idx = len(obj.map_list)
    obj.map_list.append(m)
    log.debug(f'map {len(obj.map_list) - 1} is "{m.name}"')


def _find_by_name(btf: B.Btf, name: str) -> int:
    for i, t in enumerate(btf.types):
        if btf.name(t.name_off) == name:
            return btf.first_id + i
    return 0


def _init_btf_maps(obj: ObjectModel, log: Log, strict: bool) -> None:
    if obj.maps_shndx < 0:
        return
    if obj.btf is None:
        raise log.open_error("DATASEC '.maps' not found.")
    btf = obj.btf.btf
    data = obj.sec_data.get(obj.maps_shndx, b"")
    sec_id = 0
    for i, t in enumerate(btf.types):
        if t.kind == B.DATASEC and btf.name(t.name_off) == ".maps":
            sec_id = btf.first_id + i
            break
    if not sec_id:
        raise log.open_error("DATASEC '.maps' not found.")
    sec = btf.type(sec_id)
    for var_idx, (vid, voff, vsize) in enumerate(sec.members):
        var = btf.type(vid)
        map_name = btf.name(var.name_off)
        if not map_name:
            raise log.open_error(f"map #{var_idx}: empty name.")
        if voff + vsize > len(data):
            raise log.open_error(f"map '{map_name}' BTF data is corrupted.")
        if var.kind != B.VAR:
            raise log.open_error(f"map '{map_name}': unexpected var kind {_kind_name(btf, vid)}.")
        if var.members != 1:
            linkage = {0: "static", 2: "extern"}.get(var.members, "unknown")
            raise log.open_error(f"map '{map_name}': unsupported map linkage {linkage}.")
        def_id = btf.resolve(var.size_or_type)
        dt = btf.type(def_id) if def_id else None
        if dt is None or dt.kind != B.STRUCT:
            raise log.open_error(f"map '{map_name}': unexpected def kind {_kind_name(btf, def_id)}.")
        if dt.size_or_type > vsize:
            raise log.open_error(f"map '{map_name}': invalid def size.")
        m = MapSpec(map_name, MapKind.USER)
        m.sec_idx = obj.maps_shndx
        m.sec_offset = voff
        m.var_size = vsize
        m.def_id = def_id
        log.debug(f"map '{map_name}': at sec_idx {m.sec_idx}, offset {voff}.")
        inner = parse_map_def(obj, log, map_name, def_id, strict, m, False)
        if m.pinning == Pinning.BY_NAME:
            m.pin_path = f"/sys/fs/bpf/{map_name}"
        if inner is not None:
            m.inner = inner
        obj.map_list.append(m)


# --- struct_ops (libbpf 1.1: the maps are created, never registered, by bpftool prog load) ---

STRUCT_OPS_VALUE_PREFIX = "bpf_struct_ops_"


def _init_struct_ops_maps(obj: ObjectModel, log: Log) -> None:
    """libbpf's bpf_object__init_struct_ops_maps(): one map per VAR of DATASEC .struct_ops."""
    if obj.st_ops_shndx < 0:
        return
    btf = obj.btf.btf if obj.btf is not None else None
    sec_id = _find_by_name(btf, ".struct_ops") if btf is not None else 0
    if btf is None or not sec_id or btf.type(sec_id).kind != B.DATASEC:
        raise log.open_error("struct_ops init: DATASEC .struct_ops not found")
    data = obj.sec_data.get(obj.st_ops_shndx, b"")
    for vid, voff, _vsize in btf.type(sec_id).members:
        var_name = btf.name(btf.type(vid).name_off)
        tid = btf.resolve(vid if btf.type(vid).kind != B.VAR else btf.type(vid).size_or_type)
        t = btf.type(tid) if tid else None
        tname = btf.name(t.name_off) if t is not None else ""
        if t is None or not tname:
            raise log.open_error("struct_ops init: anonymous type is not supported")
        if t.kind != B.STRUCT:
            raise log.open_error(f"struct_ops init: {tname} is not a struct")
        m = MapSpec(var_name)
        m.sec_idx, m.sec_offset = obj.st_ops_shndx, voff
        m.map_type, m.key_size, m.value_size, m.max_entries = MapType.STRUCT_OPS, 4, t.size_or_type, 1
        if voff + t.size_or_type > len(data):
            raise log.open_error(f"struct_ops init: var {var_name} is beyond the end of DATASEC .struct_ops")
        m.data = data[voff : voff + t.size_or_type]
        m.struct_name, m.struct_type_id, m.struct_progs = tname, tid, {}
        obj.map_list.append(m)
        log.debug(f"struct_ops init: struct {tname}(type_id={tid}) {var_name} found at offset {voff}")


def _is_func_ptr(btf, tid: int) -> bool:
    tid = btf.resolve(tid)
    if not tid or btf.type(tid).kind != B.PTR:
        return False
    tid = btf.resolve(btf.type(tid).size_or_type)
    return bool(tid) and btf.type(tid).kind == B.FUNC_PROTO


def collect_st_ops_relos(obj: ObjectModel, data: bytes, log: Log) -> None:
    """libbpf's bpf_object__collect_st_ops_relos(): which program fills which func ptr."""
    btf = obj.btf.btf
    for r_offset, sym_idx, _rtype in read_rels(data):
        if sym_idx >= len(obj.syms):
            raise log.open_error(f"struct_ops reloc: symbol {sym_idx:x} not found")
        sym = obj.syms[sym_idx]
        name = sym.name or "<?>"
        m = next(
            (
                m
                for m in obj.map_list
                if m.map_type == MapType.STRUCT_OPS and m.sec_offset <= r_offset < m.sec_offset + m.value_size
            ),
            None,
        )
        if m is None:
            raise log.open_error(f"struct_ops reloc: cannot find map at rel->r_offset {r_offset}")
        moff = r_offset - m.sec_offset
        raw = obj.symtab_raw
        name_off = struct.unpack_from("<I", raw, sym_idx * 24)[0] if len(raw) >= sym_idx * 24 + 4 else 0
        log.debug(
            f"struct_ops reloc {m.name}: for {sym_idx} value {sym.value} shdr_idx {sym.shndx} "
            f"rel->r_offset {r_offset} map->sec_offset {m.sec_offset} name {name_off} ('{name}')"
        )
        if sym.shndx >= 0xFF00:
            raise log.open_error(
                f"struct_ops reloc {m.name}: rel->r_offset {r_offset} shdr_idx {sym.shndx} unsupported non-static function"
            )
        if sym.value % 8:
            raise log.open_error(f"struct_ops reloc {m.name}: invalid target program offset {sym.value}")
        st = btf.type(m.struct_type_id)
        idx = next((j for j, mem in enumerate(st.members) if mem[2] == moff * 8), -1)
        if idx < 0:
            raise log.open_error(f"struct_ops reloc {m.name}: cannot find member at moff {moff}")
        mname = btf.name(st.members[idx][0])
        if not _is_func_ptr(btf, st.members[idx][1]):
            raise log.open_error(f"struct_ops reloc {m.name}: cannot relocate non func ptr {mname}")
        prog = find_prog_by_sec_insn(obj, sym.shndx, sym.value // 8)
        if prog is None:
            raise log.open_error(
                f"struct_ops reloc {m.name}: cannot find prog at shdr_idx {sym.shndx} to relocate func ptr {mname}"
            )
        if prog.prog_type != ProgType.STRUCT_OPS:
            raise log.open_error(f"struct_ops reloc {m.name}: prog {prog.name} is not struct_ops BPF program")
        if not prog.attach_btf_id:
            prog.attach_btf_id, prog.attach_type = m.struct_type_id, idx
        if prog.attach_btf_id != m.struct_type_id or prog.attach_type != idx:
            raise log.open_error(
                f"struct_ops reloc {m.name}: cannot use prog {prog.name} in sec {prog.sec_name} with type "
                f"{prog.prog_type} attach_btf_id {prog.attach_btf_id} expected_attach_type {prog.attach_type} "
                f"for func ptr {mname}"
            )
        m.struct_progs[idx] = prog


def collect_map_relos(obj: ObjectModel, data: bytes, log: Log) -> None:
    """.rel.maps: initial values of map-in-map and prog-array slots."""
    btf = obj.btf.btf if obj.btf else None
    for i in range(len(data) // 16):
        r_offset, r_info = struct.unpack_from("<QQ", data, i * 16)
        sym_idx = r_info >> 32
        if sym_idx >= len(obj.syms):
            raise log.open_error(f".maps relo #{i}: symbol {sym_idx:x} not found")
        sym = obj.syms[sym_idx]
        name = sym.name
        if log.debug_on:
            st_name = struct.unpack_from("<I", obj.symtab_raw, sym_idx * 24)[0] if obj.symtab_raw else 0
            log.debug(
                f".maps relo #{i}: for {sym_idx} value {sym.value} rel->r_offset {r_offset} name {st_name} ('{name}')"
            )
        if (
            sym.shndx != obj.maps_shndx
            and sym.shndx != obj.text_shndx
            and not any(p.sec_idx == sym.shndx for p in obj.functions)
        ):
            raise log.open_error(f".maps relo #{i}: '{name}' isn't a BTF-defined map")
        m = next(
            (
                m
                for m in obj.map_list
                if m.kind == MapKind.USER and m.sec_offset <= r_offset < m.sec_offset + m.var_size
            ),
            None,
        )
        if m is None or btf is None:
            raise log.open_error(f".maps relo #{i}: cannot find map '{name}' at rel->r_offset {r_offset}")
        target: ProgramSpec | MapSpec | None
        if m.map_type == MapType.PROG_ARRAY:
            target = next((p for p in obj.functions if p.name == name and not p.is_sub), None)
            if target is None:
                raise log.open_error(f".maps relo #{i}: '{name}' isn't a valid program")
        elif m.map_type in MAP_IN_MAP_TYPES:
            target = next((x for x in obj.map_list if x.name == name), None)
            if target is None or sym.shndx != obj.maps_shndx:
                raise log.open_error(f".maps relo #{i}: '{name}' isn't a valid map reference")
        else:
            raise log.open_error(f".maps relo #{i}: map '{m.name}' should be map-in-map or prog-array")
        dt = btf.type(m.def_id)
        if not dt.members or btf.name(dt.members[-1][0]) != "values":
            raise log.open_error(f".maps relo #{i}: '{name}' isn't a BTF-defined map")
        moff = dt.members[-1][2] // 8
        if r_offset - m.sec_offset < moff:
            raise log.open_error(f".maps relo #{i}: map '{m.name}' relo offset too small")
        moff = r_offset - m.sec_offset - moff
        if moff % 8:
            raise log.open_error(f".maps relo #{i}: map '{m.name}' slot is not aligned")
        slot = moff // 8
        while len(m.init_slots) <= slot:
            m.init_slots.append(None)
        m.init_slots[slot] = target
        kind = "prog" if m.map_type == MapType.PROG_ARRAY else "map"
        log.debug(f".maps relo #{i}: map '{m.name}' slot [{slot}] points to {kind} '{name}'")
