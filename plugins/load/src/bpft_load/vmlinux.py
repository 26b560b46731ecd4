"""Quick lookups in the kernel's BTF and kallsyms (names to ids), read once per run."""

from __future__ import annotations

import struct

_VMLINUX = "/sys/kernel/btf/vmlinux"
_index: dict[tuple[str, int], int] | None = None


def _build_index(kinds=(12, 14)) -> dict[tuple[str, int], int]:
    """(name, kind) -> type id for the FUNC and VAR types of vmlinux BTF."""
    with open(_VMLINUX, "rb") as f:
        data = f.read()
    _m, _v, _f, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<HBBIIIII", data)
    pos, end = hdr_len + type_off, hdr_len + type_off + type_len
    sbase = hdr_len + str_off
    out: dict[tuple[str, int], int] = {}
    tid = 1
    unpack = struct.unpack_from
    while pos < end:
        name_off, info, _sot = unpack("<III", data, pos)
        kind = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        if kind in kinds:
            s = sbase + name_off
            e = data.index(b"\0", s)
            out.setdefault((data[s:e].decode(), kind), tid)
        if kind in (1, 14, 17):
            pos += 16
        elif kind == 3:
            pos += 24
        elif kind in (4, 5, 15, 19):
            pos += 12 + 12 * vlen
        elif kind in (6, 13):
            pos += 12 + 8 * vlen
        else:
            pos += 12
        tid += 1
    return out


def find_kernel_type(name: str, kind: int) -> int:
    global _index
    if _index is None:
        try:
            _index = _build_index()
        except (OSError, struct.error, ValueError):
            _index = {}
    return _index.get((name, kind), 0)


_kallsyms: dict[str, int] | None = None


def kallsyms() -> dict[str, int]:
    global _kallsyms
    if _kallsyms is None:
        out: dict[str, int] = {}
        try:
            with open("/proc/kallsyms") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3:
                        out.setdefault(parts[2], int(parts[0], 16))
        except (OSError, ValueError):
            pass
        _kallsyms = out
    return _kallsyms
