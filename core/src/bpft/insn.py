"""The BPF instruction model: opcode constants, decode, encode, a small builder.

An instruction is 8 bytes: ``code`` (u8), ``dst_reg`` (low nibble) and
``src_reg`` (high nibble) of one u8, ``off`` (s16) and ``imm`` (s32), little
endian on the machines we run on. ``ld_imm64`` takes two slots: the second has
code 0 and carries the upper 32 bits in its ``imm``.

The numbers are the kernel's UAPI (include/uapi/linux/bpf.h, bpf_common.h).
"""

from __future__ import annotations

import struct

from .records import NamedTuple  # typing.NamedTuple without importing typing (start-up)

# --- classes (code & 0x07)
BPF_LD, BPF_LDX, BPF_ST, BPF_STX = 0x00, 0x01, 0x02, 0x03
BPF_ALU, BPF_JMP, BPF_JMP32, BPF_ALU64 = 0x04, 0x05, 0x06, 0x07

# --- load/store size (code & 0x18) and mode (code & 0xe0)
BPF_W, BPF_H, BPF_B, BPF_DW = 0x00, 0x08, 0x10, 0x18
BPF_IMM, BPF_ABS, BPF_IND, BPF_MEM = 0x00, 0x20, 0x40, 0x60
BPF_MEMSX, BPF_ATOMIC = 0x80, 0xC0
BPF_PROBE_MEM, BPF_PROBE_MEMSX, BPF_PROBE_MEM32 = 0x20, 0x40, 0xA0  # verifier-internal (LDX/STX)

# --- ALU/JMP source (code & 0x08) and operation (code & 0xf0)
BPF_K, BPF_X = 0x00, 0x08
BPF_TO_LE, BPF_TO_BE = 0x00, 0x08  # for BPF_END in BPF_ALU
BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV = 0x00, 0x10, 0x20, 0x30
BPF_OR, BPF_AND, BPF_LSH, BPF_RSH = 0x40, 0x50, 0x60, 0x70
BPF_NEG, BPF_MOD, BPF_XOR, BPF_MOV = 0x80, 0x90, 0xA0, 0xB0
BPF_ARSH, BPF_END = 0xC0, 0xD0

BPF_JA, BPF_JEQ, BPF_JGT, BPF_JGE = 0x00, 0x10, 0x20, 0x30
BPF_JSET, BPF_JNE, BPF_JSGT, BPF_JSGE = 0x40, 0x50, 0x60, 0x70
BPF_CALL, BPF_EXIT, BPF_JLT, BPF_JLE = 0x80, 0x90, 0xA0, 0xB0
BPF_JSLT, BPF_JSLE, BPF_JCOND = 0xC0, 0xD0, 0xE0

# --- atomic operations (imm of BPF_STX|BPF_ATOMIC)
BPF_FETCH = 0x01
BPF_XCHG = 0xE0 | BPF_FETCH
BPF_CMPXCHG = 0xF0 | BPF_FETCH
BPF_LOAD_ACQ, BPF_STORE_REL = 0x100, 0x110

# --- src_reg of ld_imm64 (pseudo sources)
BPF_PSEUDO_MAP_FD = 1
BPF_PSEUDO_MAP_VALUE = 2
BPF_PSEUDO_BTF_ID = 3
BPF_PSEUDO_FUNC = 4
BPF_PSEUDO_MAP_IDX = 5
BPF_PSEUDO_MAP_IDX_VALUE = 6

# --- src_reg of BPF_CALL
BPF_PSEUDO_CALL = 1  # bpf-to-bpf: imm is the relative insn offset
BPF_PSEUDO_KFUNC_CALL = 2  # imm is a kernel BTF id

# --- src_reg of BPF_JCOND
BPF_MAY_GOTO = 0

INSN_SIZE = 8
_INSN = struct.Struct("<BBhi")


class Insn(NamedTuple):
    """One 8-byte slot, fields as the kernel names them (``imm`` and ``off`` signed)."""

    code: int
    dst_reg: int
    src_reg: int
    off: int
    imm: int

    @property
    def cls(self) -> int:
        return self.code & 0x07

    @property
    def is_ld_imm64(self) -> bool:
        return self.code == BPF_LD | BPF_DW | BPF_IMM

    def encode(self) -> bytes:
        return _INSN.pack(self.code, (self.src_reg & 0xF) << 4 | (self.dst_reg & 0xF), self.off, self.imm)


def decode(data: bytes | bytearray | memoryview, offset: int = 0) -> Insn:
    """The instruction at byte ``offset`` of ``data``."""
    code, regs, off, imm = _INSN.unpack_from(data, offset)
    return Insn(code, regs & 0xF, regs >> 4, off, imm)


def decode_all(data: bytes | bytearray | memoryview) -> list[Insn]:
    """Every 8-byte slot of ``data`` (a trailing partial slot is ignored)."""
    return [Insn(c, r & 0xF, r >> 4, o, i) for c, r, o, i in _INSN.iter_unpack(memoryview(data)[: len(data) // 8 * 8])]


def encode_all(insns: list[Insn]) -> bytes:
    return b"".join(insn.encode() for insn in insns)


def imm64(low: Insn, high: Insn) -> int:
    """The 64-bit immediate of an ld_imm64 pair, unsigned."""
    return (low.imm & 0xFFFFFFFF) | (high.imm & 0xFFFFFFFF) << 32


def _s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


# --- a small builder: each returns a list of Insn (one, or two for ld_imm64),
# so programs are written as ``sum([...], [])`` or extended piecewise.


def alu64_imm(op: int, dst: int, imm: int) -> list[Insn]:
    return [Insn(BPF_ALU64 | op | BPF_K, dst, 0, 0, _s32(imm))]


def alu64_reg(op: int, dst: int, src: int) -> list[Insn]:
    return [Insn(BPF_ALU64 | op | BPF_X, dst, src, 0, 0)]


def alu32_imm(op: int, dst: int, imm: int) -> list[Insn]:
    return [Insn(BPF_ALU | op | BPF_K, dst, 0, 0, _s32(imm))]


def alu32_reg(op: int, dst: int, src: int) -> list[Insn]:
    return [Insn(BPF_ALU | op | BPF_X, dst, src, 0, 0)]


def mov64_imm(dst: int, imm: int) -> list[Insn]:
    return alu64_imm(BPF_MOV, dst, imm)


def mov64_reg(dst: int, src: int) -> list[Insn]:
    return alu64_reg(BPF_MOV, dst, src)


def ld_imm64(dst: int, value: int, src: int = 0) -> list[Insn]:
    """``dst = value`` (64-bit); ``src`` selects a pseudo source (BPF_PSEUDO_*)."""
    value &= 0xFFFFFFFFFFFFFFFF
    return [
        Insn(BPF_LD | BPF_DW | BPF_IMM, dst, src, 0, _s32(value)),
        Insn(0, 0, 0, 0, _s32(value >> 32)),
    ]


def ld_map_fd(dst: int, map_fd: int) -> list[Insn]:
    return ld_imm64(dst, map_fd, BPF_PSEUDO_MAP_FD)


def ld_map_value(dst: int, map_fd: int, offset: int = 0) -> list[Insn]:
    """``dst`` = address of byte ``offset`` of the map's (array) value 0."""
    return ld_imm64(dst, map_fd | (offset << 32), BPF_PSEUDO_MAP_VALUE)


def ldx_mem(size: int, dst: int, src: int, off: int) -> list[Insn]:
    return [Insn(BPF_LDX | size | BPF_MEM, dst, src, off, 0)]


def stx_mem(size: int, dst: int, src: int, off: int) -> list[Insn]:
    return [Insn(BPF_STX | size | BPF_MEM, dst, src, off, 0)]


def st_mem(size: int, dst: int, off: int, imm: int) -> list[Insn]:
    return [Insn(BPF_ST | size | BPF_MEM, dst, 0, off, _s32(imm))]


def atomic(size: int, op: int, dst: int, src: int, off: int) -> list[Insn]:
    """``lock *(size *)(dst + off) op= src`` (``op`` is BPF_ADD..., | BPF_FETCH, BPF_XCHG...)."""
    return [Insn(BPF_STX | size | BPF_ATOMIC, dst, src, off, op)]


def jmp_imm(op: int, dst: int, imm: int, off: int) -> list[Insn]:
    return [Insn(BPF_JMP | op | BPF_K, dst, 0, off, _s32(imm))]


def jmp_reg(op: int, dst: int, src: int, off: int) -> list[Insn]:
    return [Insn(BPF_JMP | op | BPF_X, dst, src, off, 0)]


def ja(off: int) -> list[Insn]:
    return [Insn(BPF_JMP | BPF_JA, 0, 0, off, 0)]


def call_helper(helper_id: int) -> list[Insn]:
    return [Insn(BPF_JMP | BPF_CALL, 0, 0, 0, helper_id)]


def call_local(rel: int) -> list[Insn]:
    """A bpf-to-bpf call to the instruction ``rel + 1`` slots after this one."""
    return [Insn(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, rel)]


def call_kfunc(btf_id: int, btf_fd_idx: int = 0) -> list[Insn]:
    return [Insn(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_KFUNC_CALL, btf_fd_idx, btf_id)]


def exit_insn() -> list[Insn]:
    return [Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)]


def assemble(*parts: list[Insn]) -> bytes:
    """Encode the concatenation of builder results."""
    return b"".join(insn.encode() for part in parts for insn in part)
