"""An ELF object's .BTF as an editable blob: the fix-ups libbpf makes before loading it.

Reading goes through ``bpft.btf.Btf``; this class keeps the raw type and
string sections next to it, records where each type starts, patches fields in
place (DATASEC size and variable offsets, VAR and FUNC linkage), appends types
and strings, and encodes the result for BPF_BTF_LOAD.
"""

from __future__ import annotations

import struct

from bpft import btf as B

_HDR = struct.Struct("<HBBIIIII")


def _type_len(kind: int, vlen: int) -> int:
    if kind in (B.INT, B.VAR, B.DECL_TAG):
        return 16
    if kind == B.ARRAY:
        return 24
    if kind in (B.STRUCT, B.UNION, B.DATASEC, B.ENUM64):
        return 12 + 12 * vlen
    if kind in (B.ENUM, B.FUNC_PROTO):
        return 12 + 8 * vlen
    return 12


class EditableBtf:
    def __init__(self, data: bytes):
        self._btf: B.Btf | None = B.Btf(data)  # validates the layout (raises BTFError)
        _m, _v, _f, hdr_len, type_off, type_len, str_off, str_len = _HDR.unpack_from(data)
        self.types = bytearray(data[hdr_len + type_off : hdr_len + type_off + type_len])
        self.strings = bytearray(data[hdr_len + str_off : hdr_len + str_off + str_len])
        self.offsets: list[int] = []
        pos = 0
        while pos < len(self.types):
            _n, info, _s = struct.unpack_from("<III", self.types, pos)
            self.offsets.append(pos)
            pos += _type_len((info >> 24) & 0x1F, info & 0xFFFF)
        self._dirty = False

    # -- reading (always from the current bytes)
    def kind(self, tid: int) -> int:
        return (struct.unpack_from("<I", self.types, self.offsets[tid - 1] + 4)[0] >> 24) & 0x1F

    def vlen(self, tid: int) -> int:
        return struct.unpack_from("<I", self.types, self.offsets[tid - 1] + 4)[0] & 0xFFFF

    def name(self, tid: int) -> str:
        (off,) = struct.unpack_from("<I", self.types, self.offsets[tid - 1])
        return self.str_at(off)

    def str_at(self, off: int) -> str:
        if off >= len(self.strings):
            raise B.BTFError(f"string offset {off} out of range")
        end = self.strings.find(b"\0", off)
        return self.strings[off : end if end >= 0 else None].decode(errors="replace")

    def size_or_type(self, tid: int) -> int:
        return struct.unpack_from("<I", self.types, self.offsets[tid - 1] + 8)[0]

    def count(self) -> int:
        return len(self.offsets)

    def find(self, name: str, kind: int) -> int:
        for tid in range(1, self.count() + 1):
            if self.kind(tid) == kind and self.name(tid) == name:
                return tid
        return 0

    def datasec_vars(self, tid: int) -> list[tuple[int, int, int]]:
        base = self.offsets[tid - 1] + 12
        return [struct.unpack_from("<III", self.types, base + 12 * i) for i in range(self.vlen(tid))]

    def var_linkage(self, tid: int) -> int:
        return struct.unpack_from("<I", self.types, self.offsets[tid - 1] + 12)[0]

    # -- patching
    def set_size(self, tid: int, size: int) -> None:
        struct.pack_into("<I", self.types, self.offsets[tid - 1] + 8, size)
        self._dirty = True

    def set_datasec_vars(self, tid: int, entries: list[tuple[int, int, int]]) -> None:
        base = self.offsets[tid - 1] + 12
        for i, e in enumerate(entries):
            struct.pack_into("<III", self.types, base + 12 * i, *e)
        self._dirty = True

    def set_var_linkage(self, tid: int, linkage: int) -> None:
        struct.pack_into("<I", self.types, self.offsets[tid - 1] + 12, linkage)
        self._dirty = True

    def set_func_linkage(self, tid: int, linkage: int) -> None:
        off = self.offsets[tid - 1] + 4
        (info,) = struct.unpack_from("<I", self.types, off)
        struct.pack_into("<I", self.types, off, (info & ~0xFFFF) | linkage)
        self._dirty = True

    def add_string(self, s: str) -> int:
        off = len(self.strings)
        self.strings += s.encode() + b"\0"
        return off

    def add_type(self, raw: bytes) -> int:
        self.offsets.append(len(self.types))
        self.types += raw
        self._dirty = True
        return len(self.offsets)

    def add_int(self, name: str, size: int, encoding: int = B.INT_SIGNED) -> int:
        return self.add_type(
            struct.pack("<IIII", self.add_string(name), B.INT << 24, size, (encoding << 24) | size * 8)
        )

    def add_var(self, name: str, type_id: int, linkage: int) -> int:
        return self.add_type(struct.pack("<IIII", self.add_string(name), B.VAR << 24, type_id, linkage))

    def encode(self) -> bytes:
        hdr = _HDR.pack(B.MAGIC, 1, 0, 24, 0, len(self.types), len(self.types), len(self.strings))
        return hdr + bytes(self.types) + bytes(self.strings)

    @property
    def btf(self) -> B.Btf:
        """A read-only view of the current bytes, parsed when first asked for after an edit."""
        if self._btf is None:
            self._btf = B.Btf(self.encode())
        return self._btf

    def reparse(self) -> None:
        """Edits are done: the next read of :attr:`btf` parses the edited blob (once, however
        many edits and reparse() calls came before)."""
        self._btf = None
