""".BTF.ext: func_info, line_info and CO-RE relocation records, per ELF section.

Each record keeps its raw bytes (the kernel takes them as they are, with
``insn_off`` rewritten); ``insn_off`` is in bytes from the start of the
section, as the compiler wrote it.
"""

from __future__ import annotations

import struct

MAGIC = 0xEB9F


class BtfExtError(ValueError):
    pass


class ExtInfo:
    """One kind of record: ``rec_size`` and ``{section name: [raw record, ...]}``."""

    def __init__(self, rec_size: int = 0):
        self.rec_size = rec_size
        self.by_sec: dict[str, list[bytes]] = {}


class BtfExt:
    def __init__(self, data: bytes, str_at):
        if len(data) < 24:
            raise BtfExtError(".BTF.ext header truncated")
        magic, _ver, _flags, hdr_len = struct.unpack_from("<HBBI", data)
        if magic != MAGIC:
            raise BtfExtError(f"bad .BTF.ext magic 0x{magic:x}")
        if hdr_len < 24 or hdr_len > len(data):
            raise BtfExtError("bad .BTF.ext header length")
        fo, fl, lo, ll = struct.unpack_from("<IIII", data, 8)
        self.func_info = self._section(data, hdr_len, fo, fl, 8, str_at, "func_info")
        self.line_info = self._section(data, hdr_len, lo, ll, 16, str_at, "line_info")
        self.core_relo = ExtInfo(16)
        if hdr_len >= 32:
            co, cl = struct.unpack_from("<II", data, 24)
            self.core_relo = self._section(data, hdr_len, co, cl, 16, str_at, "core_relo")

    @staticmethod
    def _section(data: bytes, hdr_len: int, off: int, length: int, min_rec: int, str_at, what: str) -> ExtInfo:
        if not length:
            return ExtInfo(min_rec)
        start = hdr_len + off
        end = start + length
        if off % 4 or end > len(data) or length < 4:
            raise BtfExtError(f".BTF.ext {what} section out of range")
        (rec_size,) = struct.unpack_from("<I", data, start)
        if rec_size < min_rec or rec_size % 4:
            raise BtfExtError(f".BTF.ext {what} record size {rec_size} invalid")
        info = ExtInfo(rec_size)
        pos = start + 4
        while pos < end:
            if pos + 8 > end:
                raise BtfExtError(f".BTF.ext {what} section truncated")
            name_off, num = struct.unpack_from("<II", data, pos)
            pos += 8
            if not num:
                raise BtfExtError(f".BTF.ext {what} section has no records")
            if pos + num * rec_size > end:
                raise BtfExtError(f".BTF.ext {what} section truncated")
            name = str_at(name_off)
            recs = info.by_sec.setdefault(name, [])
            for i in range(num):
                recs.append(bytes(data[pos + i * rec_size : pos + (i + 1) * rec_size]))
            pos += num * rec_size
        return info
