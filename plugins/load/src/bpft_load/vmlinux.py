"""Quick lookups in the kernel's BTF and kallsyms (names to type ids).

Walking the 5 MB vmlinux BTF takes ~200 ms in Python, so the (name, kind) ->
id index of the kinds the loader looks up (FUNC, VAR, TYPEDEF) is built once
and cached on disk under ``$XDG_CACHE_HOME/bpft`` (or ``~/.cache/bpft``),
keyed by a SHA-1 of the whole BTF blob: a different kernel's BTF never
matches a stale index. An unusable cache is ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import struct

_VMLINUX = "/sys/kernel/btf/vmlinux"
_KINDS = (8, 12, 14)  # TYPEDEF, FUNC, VAR
_index: dict | None = None


def _walk(data: bytes) -> dict:
    _m, _v, _f, hdr_len, type_off, type_len, str_off, _str_len = struct.unpack_from("<HBBIIIII", data)
    pos, end = hdr_len + type_off, hdr_len + type_off + type_len
    sbase = hdr_len + str_off
    out: dict = {}
    tid = 1
    unpack = struct.Struct("<II").unpack_from
    find = data.index
    while pos < end:
        name_off, info = unpack(data, pos)
        kind = (info >> 24) & 0x1F
        if kind in (8, 12, 14):
            s = sbase + name_off
            key = (data[s : find(b"\0", s)].decode(), kind)
            if key not in out:
                out[key] = tid
        if kind in (1, 14, 17):
            pos += 16
        elif kind == 3:
            pos += 24
        elif kind in (4, 5, 15, 19):
            pos += 12 + 12 * (info & 0xFFFF)
        elif kind in (6, 13):
            pos += 12 + 8 * (info & 0xFFFF)
        else:
            pos += 12
        tid += 1
    return out


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "bpft")


def _load_index() -> dict:
    with open(_VMLINUX, "rb") as f:
        data = f.read()
    digest = hashlib.sha1(data).hexdigest()
    path = os.path.join(_cache_dir(), f"vmlinux-{digest}.idx")
    try:
        with open(path, "rb") as f:
            idx = marshal.load(f)
        if isinstance(idx, dict):
            return idx
    except (OSError, EOFError, ValueError, TypeError):
        pass
    idx = _walk(data)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "wb") as f:
            marshal.dump(idx, f)
        os.replace(tmp, path)
    except OSError:
        pass
    return idx


def find_kernel_type(name: str, kind: int) -> int:
    """The id of vmlinux's type ``name`` of ``kind`` (TYPEDEF, FUNC or VAR), 0 if none."""
    global _index
    if _index is None:
        try:
            _index = _load_index()
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
