"""The kernel's BPF disassembler (kernel/bpf/disasm.c as bpftool v7.1 carries it), in Python.

:class:`Disasm` turns one instruction into bpftool's text, e.g.
``(85) call bpf_map_lookup_elem#1`` or ``(bf) r1 = r6``. The text depends on
the instruction's bytes only (plus, for calls, on the program's jited ksyms
and on /proc/kallsyms), so it is cached by the raw 8 bytes: real programs
repeat instructions a lot. The common classes are formatted by per-opcode
closures with their constant parts baked in (:meth:`Disasm._build_fast`).

Faithful to the 6.1-era disassembler that Debian's bpftool is built with:
instructions it predates print as it prints them (``BUG_alu64_d7`` for
bswap, ``BUG_ldx_91`` for a sign-extending load, ``(null)`` for an operator
its tables lack), and the offset field of movsx / sdiv / smod / gotol is
ignored as it ignores it.
"""

from __future__ import annotations

import struct

from .helpers import HELPER_NAMES

_SLOT = struct.Struct("<BBhi")

# bpf_alu_string, bpf_jmp_string... indexed by op >> 4; None prints as glibc's "(null)"
ALU_OPS = ("+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=", "neg", "%=", "^=", "=", "s>>=", "endian", None, None)
JMP_OPS = ("jmp", "==", ">", ">=", "&", "!=", "s>", "s>=", "call", "exit", "<", "<=", "s<", "s<=", None, None)
ATOMIC_OPS = {0x00: "add", 0x40: "or", 0x50: "and", 0xA0: "xor"}
SIZES = ("u32", "u16", "u8", "u64")
CLASSES = ("ld", "ldx", "st", "stx", "alu", "jmp", "jmp32", "alu64")
NHELPERS = len(HELPER_NAMES)

PSEUDO_MAP_FD, PSEUDO_MAP_VALUE, PSEUDO_FUNC, PSEUDO_MAP_IDX_VALUE = 1, 2, 4, 6
PSEUDO_CALL = 1


def _s(x: str | None) -> str:
    return "(null)" if x is None else x


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - 0x100000000 if v & 0x80000000 else v


def _s16(v: int) -> int:
    v &= 0xFFFF
    return v - 0x10000 if v & 0x8000 else v


class Disasm:
    """bpftool's print_bpf_insn() with its print_call / print_imm callbacks.

    ``jited_ksyms`` are the program's function addresses (calls to
    subprograms name them); ``ksyms`` resolves addresses (a
    :class:`bpft.kernel.kallsyms.Kallsyms`, loaded lazily through
    ``ksyms_loader`` the first time a call needs a name).
    """

    def __init__(self, jited_ksyms: list[int] | tuple = (), ksyms_loader=None):
        self.jited_ksyms = list(jited_ksyms)
        self._loader = ksyms_loader
        self._ksyms = None
        self.cache: dict[bytes, str] = {}
        self.fast = self._build_fast()

    # -- callbacks
    def _syms(self):
        if self._ksyms is None:
            self._ksyms = self._loader() if self._loader else False
        return self._ksyms

    def _call_name(self, src: int, off: int, imm: int) -> str:
        syms = self._syms()
        base = syms.call_base if syms else 0
        address = (base + imm) & 0xFFFFFFFFFFFFFFFF
        nj = len(self.jited_ksyms)
        if src == PSEUDO_CALL and 0 <= imm < nj:
            address = self.jited_ksyms[imm]
        sym = syms.find(address) if syms else None
        if src == PSEUDO_CALL:
            if not nj:
                return f"{off:+d}"
            if sym is not None:
                return f"{off:+d}#{sym}"
            return f"{off:+d}#0x{address:x}"
        return sym if sym is not None else f"0x{address:x}"

    def _imm_name(self, src: int, imm: int, imm2: int) -> str:
        if src == PSEUDO_MAP_FD:
            return f"map[id:{imm & 0xFFFFFFFF}]"
        if src == PSEUDO_MAP_VALUE:
            return f"map[id:{imm & 0xFFFFFFFF}][0]+{imm2 & 0xFFFFFFFF}"
        if src == PSEUDO_MAP_IDX_VALUE:
            return f"map[idx:{imm & 0xFFFFFFFF}]+{imm2 & 0xFFFFFFFF}"
        if src == PSEUDO_FUNC:
            return f"subprog[{imm:+d}]"
        return f"0x{(imm & 0xFFFFFFFF) | (imm2 & 0xFFFFFFFF) << 32:x}"

    # -- the disassembler
    def text(self, code: int, regs: int, off: int, imm: int, imm2: int = 0) -> str:
        """The text of one instruction without its newline (``imm2``: the next slot's imm)."""
        dst, src = regs & 0xF, regs >> 4
        cls = code & 7
        if cls == 4 or cls == 7:
            r = "w" if cls == 4 else "r"
            op = code & 0xF0
            if op == 0xD0:
                if cls == 7:
                    return f"BUG_alu64_{code:02x}"
                return f"({code:02x}) r{dst} = {'be' if code & 8 else 'le'}{imm} r{dst}"
            if op == 0x80:
                return f"({code:02x}) {r}{dst} = -{r}{dst}"
            if code & 8:
                return f"({code:02x}) {r}{dst} {_s(ALU_OPS[op >> 4])} {r}{src}"
            return f"({code:02x}) {r}{dst} {_s(ALU_OPS[op >> 4])} {imm}"
        size = SIZES[(code >> 3) & 3]
        mode = code & 0xE0
        if cls == 3:
            if mode == 0x60:
                return f"({code:02x}) *({size} *)(r{dst} {off:+d}) = r{src}"
            if mode == 0xC0:
                b64 = "64" if code & 0x18 == 0x18 else ""
                if imm in ATOMIC_OPS:
                    return f"({code:02x}) lock *({size} *)(r{dst} {off:+d}) {ALU_OPS[imm >> 4]} r{src}"
                if imm & 1 and imm - 1 in ATOMIC_OPS:
                    name = ATOMIC_OPS[imm - 1]
                    return f"({code:02x}) r{src} = atomic{b64}_fetch_{name}(({size} *)(r{dst} {off:+d}), r{src})"
                if imm == 0xF1:
                    return f"({code:02x}) r0 = atomic{b64}_cmpxchg(({size} *)(r{dst} {off:+d}), r0, r{src})"
                if imm == 0xE1:
                    return f"({code:02x}) r{src} = atomic{b64}_xchg(({size} *)(r{dst} {off:+d}), r{src})"
            return f"BUG_{code:02x}"
        if cls == 2:
            if mode == 0x60:
                return f"({code:02x}) *({size} *)(r{dst} {off:+d}) = {imm}"
            if mode == 0xC0:
                return f"({code:02x}) nospec"
            return f"BUG_st_{code:02x}"
        if cls == 1:
            if mode != 0x60:
                return f"BUG_ldx_{code:02x}"
            return f"({code:02x}) r{dst} = *({size} *)(r{src} {off:+d})"
        if cls == 0:
            if mode == 0x20:
                return f"({code:02x}) r0 = *({size} *)skb[{imm}]"
            if mode == 0x40:
                return f"({code:02x}) r0 = *({size} *)skb[r{src} + {imm}]"
            if code == 0x18:
                return f"({code:02x}) r{dst} = {self._imm_name(src, imm, imm2)}"
            return f"BUG_ld_{code:02x}"
        # JMP / JMP32
        op = code & 0xF0
        if op == 0x80:
            if src == PSEUDO_CALL:
                return f"({code:02x}) call pc{self._call_name(src, off, imm)}"
            if src == 0 and 0 <= imm < NHELPERS:
                name = HELPER_NAMES[imm]
            else:
                name = self._call_name(src, off, imm)
            return f"({code:02x}) call {name}#{imm}"
        if code == 0x05:
            return f"({code:02x}) goto pc{off:+d}"
        if code == 0x95:
            return f"({code:02x}) exit"
        r = "w" if cls == 6 else "r"
        if code & 8:
            return f"({code:02x}) if {r}{dst} {_s(JMP_OPS[op >> 4])} {r}{src} goto pc{off:+d}"
        return f"({code:02x}) if {r}{dst} {_s(JMP_OPS[op >> 4])} 0x{imm & 0xFFFFFFFF:x} goto pc{off:+d}"

    def raw_text(self, raw: int, raw2: int = 0) -> str:
        """Text of the instruction whose 8 little-endian bytes are ``raw``."""
        code = raw & 0xFF
        return self.text(code, (raw >> 8) & 0xFF, _s16(raw >> 16), _s32(raw >> 32), _s32(raw2 >> 32))

    def slot_text(self, slot: bytes, nxt: bytes = b"") -> str:
        """Text of one 8-byte slot (``nxt``: the following slot, for ld_imm64), cached by its bytes.

        The cache is keyed by the bytes (whose hash mixes every bit; raw u64
        keys would collide on their low bits, the opcode).
        """
        t = self.cache.get(slot)
        if t is None:
            code, regs, off, imm = _SLOT.unpack(slot)
            f = self.fast[code]
            if f is not None:
                t = f(regs & 0xF, regs >> 4, off, imm)
            else:
                imm2 = _SLOT.unpack(nxt)[3] if len(nxt) == 8 else 0
                t = self.text(code, regs, off, imm, imm2)
                if code == 0x18:
                    return t
            self.cache[slot] = t
        return t

    def fresh_text(self, slot: bytes) -> str:
        """:meth:`slot_text` without the cache (for callers that cache what they build from it)."""
        code, regs, off, imm = _SLOT.unpack(slot)
        f = self.fast[code]
        if f is not None:
            return f(regs & 0xF, regs >> 4, off, imm)
        return self.text(code, regs, off, imm, 0)

    def _build_fast(self) -> list:
        """Per-opcode formatters for the common classes (same text as :meth:`text`)."""
        fast: list = [None] * 256
        for code in range(256):
            cls = code & 7
            c = f"({code:02x})"
            if cls in (4, 7):
                op = code & 0xF0
                if op in (0xD0, 0x80):
                    continue
                r = "w" if cls == 4 else "r"
                sym = _s(ALU_OPS[op >> 4])
                if code & 8:
                    fast[code] = lambda d, s_, o, i, p=f"{c} {r}", m=f" {sym} {r}": f"{p}{d}{m}{s_}"
                else:
                    fast[code] = lambda d, s_, o, i, p=f"{c} {r}", m=f" {sym} ": f"{p}{d}{m}{i}"
            elif cls in (1, 2, 3) and code & 0xE0 == 0x60:
                size = SIZES[(code >> 3) & 3]
                if cls == 1:
                    fast[code] = lambda d, s_, o, i, p=f"{c} r", m=f" = *({size} *)(r": f"{p}{d}{m}{s_} {o:+d})"
                elif cls == 2:
                    fast[code] = lambda d, s_, o, i, p=f"{c} *({size} *)(r": f"{p}{d} {o:+d}) = {i}"
                else:
                    fast[code] = lambda d, s_, o, i, p=f"{c} *({size} *)(r": f"{p}{d} {o:+d}) = r{s_}"
            elif cls in (5, 6):
                op = code & 0xF0
                if op == 0x80 or code in (0x05, 0x95):
                    continue
                r = "w" if cls == 6 else "r"
                sym = _s(JMP_OPS[op >> 4])
                if code & 8:
                    fast[code] = lambda d, s_, o, i, p=f"{c} if {r}", m=f" {sym} {r}": f"{p}{d}{m}{s_} goto pc{o:+d}"
                else:
                    fast[code] = lambda d, s_, o, i, p=f"{c} if {r}", m=f" {sym} 0x": (
                        f"{p}{d}{m}{i & 0xFFFFFFFF:x} goto pc{o:+d}"
                    )
        fast[0x05] = lambda d, s_, o, i: f"(05) goto pc{o:+d}"
        fast[0x95] = lambda d, s_, o, i: "(95) exit"
        return fast
