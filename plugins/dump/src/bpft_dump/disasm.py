"""The kernel's BPF disassembler (kernel/bpf/disasm.c as bpftool v7.1 carries it), in Python.

:class:`Disasm` turns one instruction into bpftool's text, e.g.
``(85) call bpf_map_lookup_elem#1`` or ``(bf) r1 = r6``. For all but a few
opcodes the text is a function of the fields alone, so it is written down
as one ``str.format`` text per opcode (:data:`BODY_FORMATS`), and a whole
image is formatted by one ``map()`` over its decoded columns
(:meth:`Disasm.listing`): no Python code runs per instruction. Calls (named
from the program's jited ksyms and /proc/kallsyms), ld_imm64 (two slots)
and atomics go through :meth:`Disasm.text`.

Faithful to the 6.1-era disassembler that Debian's bpftool is built with:
instructions it predates print as it prints them (``BUG_alu64_d7`` for
bswap, ``BUG_ldx_91`` for a sign-extending load, ``(null)`` for an operator
its tables lack), and the offset field of movsx / sdiv / smod / gotol is
ignored as it ignores it.
"""

from __future__ import annotations

import struct
from itertools import repeat
from operator import itemgetter

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

    def load_ksyms_for(self, image: bytes) -> None:
        """Load the kernel symbols now if a call in ``image`` will need them (before forking workers)."""
        for i in self.special_slots(image):
            code, regs, _, imm = _SLOT.unpack_from(image, i * 8)
            if code & 0xF0 == 0x80 and code & 7 in (5, 6) and (regs >> 4 or not 0 <= imm < NHELPERS):
                self._syms()
                return

    # -- the disassembler
    def text(self, code: int, regs: int, off: int, imm: int, imm2: int = 0) -> str:
        """The text of one instruction without its newline (``imm2``: the next slot's imm)."""
        dst, src = regs & 0xF, regs >> 4
        fmt = BODY_FORMATS[code]
        if fmt is not None:
            return fmt.format(dst, src, f"{off:+d}", imm, imm & 0xFFFFFFFF)
        # what the table cannot say: atomics, ld_imm64, calls
        cls = code & 7
        if cls == 3:  # BPF_STX | BPF_ATOMIC
            size = SIZES[(code >> 3) & 3]
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
        if cls == 0:  # ld_imm64
            return f"({code:02x}) r{dst} = {self._imm_name(src, imm, imm2)}"
        # BPF_CALL (JMP or JMP32 class)
        if src == PSEUDO_CALL:
            return f"({code:02x}) call pc{self._call_name(src, off, imm)}"
        if src == 0 and 0 <= imm < NHELPERS:
            name = HELPER_NAMES[imm]
        else:
            name = self._call_name(src, off, imm)
        return f"({code:02x}) call {name}#{imm}"

    def raw_text(self, raw: int, raw2: int = 0) -> str:
        """Text of the instruction whose 8 little-endian bytes are ``raw``."""
        code = raw & 0xFF
        return self.text(code, (raw >> 8) & 0xFF, _s16(raw >> 16), _s32(raw >> 32), _s32(raw2 >> 32))

    def listing(
        self,
        image: bytes,
        head: str = "",
        tail: str = "",
        index: bool = False,
        hexes: bool = False,
        start: int = 0,
        stop: int | None = None,
    ) -> list[str]:
        """One string per 8-byte slot ``start``..``stop`` of ``image``: ``head + text + tail``.

        ``head`` and ``tail`` are str.format texts themselves: ``{5}`` is the
        slot number (with ``index``), ``{6}`` the slot's bytes in hex,
        ``"b7 01 00 ..."`` (with ``hexes``).

        No Python code runs per instruction. Each distinct pair of opcode and
        registers (the slot's first two bytes) gets its own format text with
        the register numbers written in; the slots are decoded column by
        column (memoryview slices and casts) and formatted by one
        ``map(str.format, ...)``. No argument needs a format spec (an int
        spec such as ``{:+d}`` costs as much as the rest of the text): the
        signed offset comes as a text, looked up per distinct value. Slots of
        :data:`SPECIAL` opcodes (and second halves of ld_imm64) come back as
        whatever their format gives (``""``); callers fill them in from
        :meth:`special_slots` and :meth:`text`.
        """
        n = len(image) // 8
        stop = n if stop is None else min(stop, n)
        if start >= stop:
            return []
        mv = memoryview(image)[start * 8 : stop * 8]
        keys = mv.cast("H")[0::4].tolist()  # opcode | registers << 8; lists iterate faster than memoryviews
        formats = {}
        for key in set(keys):
            body = BODY_FORMATS[key & 0xFF]
            if body is None:
                formats[key] = ""
            else:
                body = body.replace("{0}", str(key >> 8 & 0xF)).replace("{1}", str(key >> 12))
                formats[key] = head + body + tail
        offs = mv.cast("h")[1::4].tolist()
        off_texts = {off: f"{off:+d}" for off in set(offs)}
        cols = [
            map(formats.__getitem__, keys),
            repeat(None),  # {0} and {1}, the registers, are in the format texts
            repeat(None),
            map(off_texts.__getitem__, offs),
            mv.cast("i")[1::2].tolist(),
            mv.cast("I")[1::2].tolist(),
        ]
        if index or hexes:
            cols.append(range(start, stop))
        if hexes:
            cols.append(map(bytes.hex, map(itemgetter(0), struct.iter_unpack("8s", mv)), repeat(" ")))
        return list(map(str.format, *cols))

    @staticmethod
    def special_slots(image: bytes, start: int = 0, stop: int | None = None) -> list[int]:
        """Indexes of the slots ``start``..``stop`` whose opcode is in :data:`SPECIAL`, ascending."""
        n = len(image) // 8
        stop = n if stop is None else min(stop, n)
        mask = image[0 : stop * 8 : 8].translate(_SPECIAL_MASK)
        out = []
        find = mask.find
        i = find(1, start)
        while i >= 0:
            out.append(i)
            i = find(1, i + 1)
        return out

    def slot(self, image: bytes, i: int) -> str:
        """The text of slot ``i`` of ``image`` (the next slot's imm completes an ld_imm64)."""
        code, regs, off, imm = _SLOT.unpack_from(image, i * 8)
        imm2 = _SLOT.unpack_from(image, i * 8 + 8)[3] if len(image) >= i * 8 + 16 else 0
        return self.text(code, regs, off, imm, imm2)


def _body_format(code: int) -> str | None:
    """str.format text of opcode ``code`` over (dst, src, off as a signed text ("+8"), imm, imm as u32), as :meth:`Disasm.text` prints it;
    None when the text depends on more than these (calls, ld_imm64, atomics)."""
    cls = code & 7
    c = f"({code:02x})"
    if cls == 4 or cls == 7:
        r = "w" if cls == 4 else "r"
        op = code & 0xF0
        if op == 0xD0:
            if cls == 7:
                return f"BUG_alu64_{code:02x}"
            return c + " r{0} = " + ("be" if code & 8 else "le") + "{3} r{0}"
        if op == 0x80:
            return f"{c} {r}{{0}} = -{r}{{0}}"
        if code & 8:
            return f"{c} {r}{{0}} {_s(ALU_OPS[op >> 4])} {r}{{1}}"
        return f"{c} {r}{{0}} {_s(ALU_OPS[op >> 4])} {{3}}"
    size = SIZES[(code >> 3) & 3]
    mode = code & 0xE0
    if cls == 3:
        if mode == 0x60:
            return c + " *(" + size + " *)(r{0} {2}) = r{1}"
        if mode == 0xC0:
            return None
        return f"BUG_{code:02x}"
    if cls == 2:
        if mode == 0x60:
            return c + " *(" + size + " *)(r{0} {2}) = {3}"
        if mode == 0xC0:
            return f"{c} nospec"
        return f"BUG_st_{code:02x}"
    if cls == 1:
        if mode != 0x60:
            return f"BUG_ldx_{code:02x}"
        return c + " r{0} = *(" + size + " *)(r{1} {2})"
    if cls == 0:
        if mode == 0x20:
            return c + " r0 = *(" + size + " *)skb[{3}]"
        if mode == 0x40:
            return c + " r0 = *(" + size + " *)skb[r{1} + {3}]"
        if code == 0x18:
            return None
        return f"BUG_ld_{code:02x}"
    op = code & 0xF0
    if op == 0x80:
        return None
    if code == 0x05:
        return c + " goto pc{2}"
    if code == 0x95:
        return f"{c} exit"
    r = "w" if cls == 6 else "r"
    if code & 8:
        return f"{c} if {r}{{0}} {_s(JMP_OPS[op >> 4])} {r}{{1}} goto pc{{2}}"
    return f"{c} if {r}{{0}} {_s(JMP_OPS[op >> 4])} 0x{{4:x}} goto pc{{2}}"


BODY_FORMATS: tuple[str | None, ...] = tuple(_body_format(code) for code in range(256))
SPECIAL = frozenset(code for code, f in enumerate(BODY_FORMATS) if f is None)
_SPECIAL_MASK = bytes(1 if code in SPECIAL else 0 for code in range(256))
