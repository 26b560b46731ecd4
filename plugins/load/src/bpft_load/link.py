"""Linking each main program: appending subprograms (bpf-to-bpf calls and callbacks),
carrying func_info/line_info/CO-RE records along, and resolving map, data and
extern references to the created maps — libbpf 1.1's bpf_object__relocate.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from .errors import OpenError
from .log import Log
from .model import INSN, RelocKind, find_prog_by_sec_insn
from .model import ObjectModel as Object
from .model import ProgramSpec as Program
from .model import Relocation as Relo

R_LD64, R_CALL, R_DATA, R_EXTERN_VAR, R_EXTERN_FUNC, R_SUBPROG_ADDR = RelocKind

BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE, BPF_PSEUDO_BTF_ID, BPF_PSEUDO_FUNC = 1, 2, 3, 4
BPF_PSEUDO_MAP_IDX, BPF_PSEUDO_MAP_IDX_VALUE = 5, 6
BPF_PSEUDO_CALL, BPF_PSEUDO_KFUNC_CALL = 1, 2

_I32 = struct.Struct("<i")


def _imm(buf: bytearray, idx: int) -> int:
    return _I32.unpack_from(buf, idx * INSN + 4)[0]


def _set_imm(buf: bytearray, idx: int, v: int) -> None:
    v &= 0xFFFFFFFF
    struct.pack_into("<I", buf, idx * INSN + 4, v)


def _set_src(buf: bytearray, idx: int, src: int) -> None:
    buf[idx * INSN + 1] = (buf[idx * INSN + 1] & 0x0F) | (src << 4)


def _src(buf: bytearray, idx: int) -> int:
    return buf[idx * INSN + 1] >> 4


class Linked:
    """One main program after linking: its instructions and per-instruction records."""

    def __init__(self, prog: Program):
        self.prog = prog
        self.insns = bytearray(prog.insns)
        self.relos: list[Relo] = []  # data relos, insn_idx relative to the linked program
        self.func_info: list[bytes] = []
        self.line_info: list[bytes] = []
        self.core: list[tuple] = []  # (insn byte off in linked prog, raw record)
        self.sub_off: dict[int, int] = {}  # id(subprog) -> insn offset in this program


def _ext_records(obj: Object, prog: Program, kind: str) -> list[bytes]:
    ext = obj.btf_ext
    if ext is None:
        return []
    info = getattr(ext, kind)
    recs = info.by_sec.get(prog.sec_name, [])
    lo, hi = prog.sec_insn_off * INSN, (prog.sec_insn_off + prog.sec_insn_cnt) * INSN
    return [r for r in recs if lo <= struct.unpack_from("<I", r)[0] < hi]


def _append_ext(obj: Object, linked: Linked, prog: Program, at: int) -> None:
    """Copy prog's func/line info and CO-RE records into linked, at insn offset ``at``."""
    for kind, dest in (("func_info", linked.func_info), ("line_info", linked.line_info)):
        for r in _ext_records(obj, prog, kind):
            off = struct.unpack_from("<I", r)[0] // INSN - prog.sec_insn_off + at
            dest.append(struct.pack("<I", off) + r[4:])
    for r in _ext_records(obj, prog, "core_relo"):
        off = struct.unpack_from("<I", r)[0] - prog.sec_insn_off * INSN + at * INSN
        linked.core.append((off, r))


def link_program(obj: Object, main: Program, log: Log) -> Linked:
    linked = Linked(main)
    linked.sub_off[id(main)] = 0
    _append_ext(obj, linked, main, 0)
    for r in main.relos:
        if r.kind not in (R_CALL, R_SUBPROG_ADDR):
            linked.relos.append(Relo(r.kind, r.insn_idx, r.map_idx, r.sym_off, r.ext, r.sym_name))
    _reloc_code(obj, linked, main, log, 0)
    return linked


def _reloc_code(obj: Object, linked: Linked, prog: Program, log: Log, depth: int) -> None:
    if depth > 256:
        log.warn(f"prog '{linked.prog.name}': subprogram nesting too deep")
        raise OpenError()
    base = linked.sub_off[id(prog)]
    relo_by_insn = {r.insn_idx: r for r in prog.relos}
    buf = linked.insns
    for insn_idx in range(prog.sec_insn_cnt):
        i = base + insn_idx
        code = buf[i * INSN]
        src = _src(buf, i)
        is_call = code == 0x85 and src == BPF_PSEUDO_CALL
        relo = relo_by_insn.get(insn_idx)
        is_func = code == 0x18 and relo is not None and relo.kind == R_SUBPROG_ADDR
        if not is_call and not is_func:
            continue
        if relo is not None and relo.kind == R_EXTERN_FUNC:
            continue
        if relo is not None and relo.kind not in (R_CALL, R_SUBPROG_ADDR):
            log.warn(f"prog '{prog.name}': unexpected relo for insn #{insn_idx}, type {relo.kind}")
            raise OpenError()
        imm = _imm(buf, i)
        if relo is not None:
            if relo.kind == R_CALL:
                sub_idx = relo.sym_off // INSN + imm + 1
            else:
                if (relo.sym_off + imm) % INSN:
                    log.warn(f"prog '{prog.name}': bad subprog addr relo for insn #{insn_idx}")
                    raise OpenError()
                sub_idx = (relo.sym_off + imm) // INSN
        else:
            sub_idx = prog.sec_insn_off + insn_idx + imm + 1
        sub = find_prog_by_sec_insn(obj, obj.text_shndx, sub_idx)
        if sub is None or sub.sec_insn_off != sub_idx:
            if sub is None:
                log.warn(f"prog '{prog.name}': no .text section found yet sub-program call exists")
            else:
                log.warn(f"prog '{prog.name}': call into the middle of subprogram '{sub.name}'")
            raise OpenError()
        if id(sub) not in linked.sub_off:
            at = len(buf) // INSN
            linked.sub_off[id(sub)] = at
            buf += sub.insns
            log.debug(f"prog '{linked.prog.name}': added {sub.sec_insn_cnt} insns from sub-prog '{sub.name}'")
            _append_ext(obj, linked, sub, at)
            for r in sub.relos:
                if r.kind not in (R_CALL, R_SUBPROG_ADDR):
                    linked.relos.append(Relo(r.kind, r.insn_idx + at, r.map_idx, r.sym_off, r.ext, r.sym_name))
            _reloc_code(obj, linked, sub, log, depth + 1)
        if is_func:
            _set_src(buf, i, BPF_PSEUDO_FUNC)
        at = linked.sub_off[id(sub)]
        _set_imm(buf, i, at - (base + insn_idx) - 1)
        if log.debug_on:
            log.debug(
                f"prog '{prog.name}': insn #{insn_idx} relocated, imm {at - (base + insn_idx) - 1} "
                f"points to subprog '{sub.name}' (now at {at} offset)"
            )


def relocate_data(
    map_fds: Sequence[int], kconfig_map_idx: int, linked: Linked, log: Log, *, by_index: bool = False
) -> None:
    """Point map, data and extern references at the created maps and the resolved externs;
    ``map_fds`` holds the created maps' fds by the spec's map index. ``by_index`` (a
    generated loader, whose maps do not exist yet): ``map_fds`` holds each map's index,
    which the references name as ``BPF_PSEUDO_MAP_IDX`` / ``_IDX_VALUE`` into the
    loader's fd_array."""
    if by_index:
        src_map, src_value = BPF_PSEUDO_MAP_IDX, BPF_PSEUDO_MAP_IDX_VALUE
    else:
        src_map, src_value = BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE
    buf = linked.insns
    for r in linked.relos:
        i = r.insn_idx
        if r.kind == R_LD64:
            _set_src(buf, i, src_map)
            _set_imm(buf, i, map_fds[r.map_idx])
        elif r.kind == R_DATA:
            _set_imm(buf, i + 1, _imm(buf, i) + r.sym_off)
            _set_src(buf, i, src_value)
            _set_imm(buf, i, map_fds[r.map_idx])
        elif r.kind == R_EXTERN_VAR:
            e = r.ext
            assert e is not None, "relocs.py gives every EXTERN_* relocation its extern"
            if e.kind == "kconfig":
                _set_src(buf, i, src_value)
                _set_imm(buf, i, map_fds[kconfig_map_idx])
                _set_imm(buf, i + 1, e.data_off)
            elif e.type_id:
                if e.is_set:
                    _set_src(buf, i, BPF_PSEUDO_BTF_ID)
                    _set_imm(buf, i, e.kernel_btf_id)
                    _set_imm(buf, i + 1, e.kernel_btf_obj_fd)
                else:
                    _set_imm(buf, i, 0)
                    _set_imm(buf, i + 1, 0)
            else:
                _set_imm(buf, i, e.addr & 0xFFFFFFFF)
                _set_imm(buf, i + 1, e.addr >> 32)
        elif r.kind == R_EXTERN_FUNC:
            e = r.ext
            assert e is not None, "relocs.py gives every EXTERN_* relocation its extern"
            _set_src(buf, i, BPF_PSEUDO_KFUNC_CALL)
            _set_imm(buf, i, e.kernel_btf_id if e.is_set else 0)
            struct.pack_into("<h", buf, i * INSN + 2, 0)
