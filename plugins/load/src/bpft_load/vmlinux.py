"""Quick lookups in the kernel's BTF and kallsyms (names to type ids).

Walking the 5 MB vmlinux BTF takes ~200 ms in Python, so the (name, kind) ->
id index of the kinds the loader looks up (FUNC, VAR, TYPEDEF) is built once
and cached on disk under ``$XDG_CACHE_HOME/bpft`` (or ``~/.cache/bpft``),
keyed by a SHA-1 of the whole BTF blob: a different kernel's BTF never
matches a stale index. An unusable cache is ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import struct
from array import array

_VMLINUX = "/sys/kernel/btf/vmlinux"
_KINDS = (8, 12, 14)  # TYPEDEF, FUNC, VAR
_index = None


class _Index:
    """Per kind: the names, NUL-separated in one blob, and their ids in order.

    A lookup is one ``bytes.find`` and one ``bytes.count`` in C; loading it
    from disk is one read, with no per-entry unpickling.
    """

    def __init__(self, blobs: dict[int, bytes], ids: dict[int, array]):
        self.blobs, self.ids = blobs, ids

    @classmethod
    def from_dict(cls, d: dict) -> _Index:
        blobs, ids = {}, {}
        for kind in _KINDS:
            items = [(n, i) for (n, k), i in d.items() if k == kind]
            blobs[kind] = b"\0" + b"\0".join(n.encode() for n, _ in items) + b"\0"
            ids[kind] = array("I", [i for _, i in items])
        return cls(blobs, ids)

    def get(self, name: str, kind: int) -> int:
        blob = self.blobs.get(kind)
        if not blob or "\0" in name:
            return 0
        pos = blob.find(b"\0" + name.encode() + b"\0")
        if pos < 0:
            return 0
        return self.ids[kind][blob.count(b"\0", 0, pos)]

    def dump(self) -> bytes:
        out = [struct.pack("<I", len(_KINDS))]
        for kind in _KINDS:
            ids = self.ids[kind].tobytes()
            out.append(struct.pack("<III", kind, len(self.blobs[kind]), len(ids)))
            out += [self.blobs[kind], ids]
        return b"".join(out)

    @classmethod
    def load(cls, data: bytes) -> _Index:
        (n,) = struct.unpack_from("<I", data)
        pos, blobs, ids = 4, {}, {}
        for _ in range(n):
            kind, bl, il = struct.unpack_from("<III", data, pos)
            pos += 12
            blobs[kind] = data[pos : pos + bl]
            pos += bl
            a = array("I")
            a.frombytes(data[pos : pos + il])
            ids[kind] = a
            pos += il
        if pos != len(data):
            raise ValueError("bad index")
        for kind in _KINDS:
            if blobs[kind].count(b"\0") - 1 != len(ids[kind]):
                raise ValueError("bad index")
        return cls(blobs, ids)


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
    path = os.path.join(_cache_dir(), f"vmlinux-{digest}.idx2")
    try:
        with open(path, "rb") as f:
            return _Index.load(f.read())
    except (OSError, EOFError, ValueError, TypeError, KeyError, struct.error):
        pass
    idx = _Index.from_dict(_walk(data))
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(idx.dump())
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
            _index = _Index.from_dict({})
    return _index.get(name, kind)


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
