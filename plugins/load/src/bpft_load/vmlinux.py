"""The running kernel's BTF (``/sys/kernel/btf/vmlinux``): one lazily decoded view, one name index.

Every lookup the loader makes in the kernel's BTF goes through
:class:`KernelBtf`: CO-RE candidates by essential name (``corerelo``),
attach_btf_id targets (``loader``) and kfunc/ksym externs (``externs``), by
exact name and kind (:func:`find_kernel_type`).

Parsing all of the 5.5 MB vmlinux BTF (126k types) into Python objects costs
half a second, so the file is mapped and only the types a lookup touches are
decoded. What cannot be lazy is the position of every record (type ids are
positions in a variable-length sequence: one pass, ~60 ms in Python) and a
table of ``crc32(essential name) << 32 | id``, sorted (~100 ms more). Both are
kept in one cache file, mapped by later processes for about a millisecond.

The cache
---------
Location, first that applies:

- ``BPFT_NO_CACHE`` set (to anything non-empty): no cache; each process scans
  (~60 ms) and finds names by searching the string section instead of a table;
- ``$BPFT_CACHE_DIR``;
- ``/run/bpft`` when running as root (a tmpfs: gone at reboot);
- ``$XDG_RUNTIME_DIR/bpft``, else ``$XDG_CACHE_HOME/bpft`` (or
  ``~/.cache/bpft``) for other users.

The file in it is :data:`CACHE_NAME` (``vmlinux-v4.idx``: the format version
is in the name, so two revisions of bpft never overwrite each other's).

Safety: the file is keyed by the BTF file's size, section lengths, CRCs of its
first and last 64 KiB, its device, inode and mtime, and the boot id, so
another kernel's BTF (or another file) never reuses it; the index body carries
a CRC and is spot-checked against the BTF (record chaining) before use, so a
corrupt or truncated file is detected and rebuilt. A file not owned by us (or
root) or writable by others is ignored. It is written to a temporary name and
renamed, so concurrent processes never see half a file. Where the directory
cannot be created or written, nothing is written and the lookups still work
(from the scan).
"""

from __future__ import annotations

import bisect
import mmap
import os
import stat
import struct
import zlib
from array import array
from itertools import accumulate, compress

from bpft.records import TYPE_CHECKING

if TYPE_CHECKING:  # typing costs start-up: annotations only
    from typing import Any

from bpft import btf as _btf
from bpft.btf import Type
from bpft.cachedir import cache_dir

VMLINUX = "/sys/kernel/btf/vmlinux"
CACHE_NAME = "vmlinux-v4.idx"


def essential_name_len(name: str) -> int:
    """bpf_core_essential_name_len: length before the last ``X___Y`` flavor separator."""
    if "___" not in name:
        return len(name)
    for i in range(len(name) - 5, -1, -1):
        if name[i] != "_" and name[i + 1 : i + 4] == "___" and name[i + 4] != "_":
            return i + 1
    return len(name)


def essential_name(name: str) -> str:
    return name[: essential_name_len(name)]


# words after the 12-byte header: fixed, and per vlen, by kind
_FIX = (0, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0)
_PER = (0, 0, 0, 0, 3, 3, 2, 0, 0, 0, 0, 0, 0, 2, 0, 3, 0, 0, 0, 3)
_CACHE_MAGIC = b"BPFTVMX4"
# the key: file size, type_len, str_len, st_dev, st_ino, st_mtime_ns, crc head, crc tail, boot id
_KEY = struct.Struct("<QQQQQQII36s")
# magic, key, ntypes, nhash, crc of the body
_CACHE_HDR = struct.Struct(f"<8s{_KEY.size}sQQI")


def _boot_id() -> bytes:
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as f:
            return f.read().strip()[:36].ljust(36, b"\0")
    except OSError:
        return b"\0" * 36


class _Crcs(dict):
    """String offset -> crc32 of the (essential) name there; computed on a miss."""

    strs = b""

    def __missing__(self, off: int) -> int:
        s = self.strs
        end = s.find(b"\0", off)
        raw = s[off : end if end >= 0 else len(s)]
        if b"___" in raw:
            raw = essential_name(raw.decode(errors="replace")).encode()
        v = self[off] = zlib.crc32(raw)
        return v


class KernelBtf(_btf.TypeWalks):
    """The kernel's BTF, mapped and decoded lazily (see the module docstring).

    ``type(id)`` decodes one record on demand; ``candidates(essential_name)``
    finds the ids of every type of that essential name.
    """

    label = "vmlinux"

    def __init__(self, path: str = VMLINUX):
        self.path = path
        fd = os.open(path, os.O_RDONLY)
        try:
            st = os.fstat(fd)
            self._stat = (st.st_dev, st.st_ino, st.st_mtime_ns)
            try:
                self.data: Any = mmap.mmap(fd, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
            except (OSError, ValueError):
                with os.fdopen(os.dup(fd), "rb") as f:
                    self.data = f.read()
        finally:
            os.close(fd)
        data = self.data
        if len(data) < 24:
            raise _btf.BTFError("BTF header truncated")
        magic, _v, _f, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<HBBIIIII", data)
        if magic != _btf.MAGIC:
            raise _btf.BTFError(f"bad BTF magic 0x{magic:x}")
        self.ts = hdr_len + type_off
        self.te = self.ts + type_len
        self.ss = hdr_len + str_off
        self.se = self.ss + str_len
        if self.te > len(data) or self.se > len(data) or self.ts % 4:
            raise _btf.BTFError("BTF sections out of range")
        self._types: dict[int, Type] = {}
        self._cands: dict[str, list[int]] = {}
        self._strs: dict[int, str] = {}  # decoded names (CO-RE matching walks the same members again)
        self._offs: Any = None  # id - 1 -> record position, in words from the type section
        self._names: Any = None  # id - 1 -> name_off (only when built here)
        self._hash: Any = None  # sorted crc32(essential name) << 32 | id
        self.index_source = ""
        self._load_index()

    # -- index
    def _key(self) -> bytes:
        d = self.data
        head = zlib.crc32(d[: min(len(d), 65536)])
        tail = zlib.crc32(d[max(0, len(d) - 65536) :])
        return _KEY.pack(len(d), self.te - self.ts, self.se - self.ss, *self._stat, head, tail, _boot_id())

    def _load_index(self) -> None:
        cdir = cache_dir()
        key = self._key() if cdir else b""
        if cdir and self._read_cache(os.path.join(cdir, CACHE_NAME), key):
            self.index_source = "cache"
            return
        self._walk()
        self.index_source = "scan"
        if cdir:
            try:
                os.makedirs(cdir, mode=0o700, exist_ok=True)
                if os.access(cdir, os.W_OK):  # else the hash table is not worth building
                    self._build_hash()
                    self._write_cache(cdir, key)
            except OSError:
                pass

    def _read_cache(self, path: str, key: bytes) -> bool:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return False
        try:
            st = os.fstat(fd)
            # trust only our own (or root's) regular file that no one else can write
            if not stat.S_ISREG(st.st_mode) or st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
                return False
            m = mmap.mmap(fd, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
        except (OSError, ValueError):
            return False
        finally:
            os.close(fd)
        try:
            if len(m) < _CACHE_HDR.size:
                return False
            magic, mkey, ntypes, nhash, crc = _CACHE_HDR.unpack_from(m)
            if magic != _CACHE_MAGIC or mkey != key:
                return False
            o_start = _CACHE_HDR.size + (-_CACHE_HDR.size % 8)
            h_start = o_start + 4 * ntypes + (-(4 * ntypes) % 8)
            if h_start + 8 * nhash != len(m) or not ntypes:
                return False
            if zlib.crc32(memoryview(m)[o_start:]) != crc:
                return False
            offs = memoryview(m)[o_start : o_start + 4 * ntypes].cast("I")
            hashes = memoryview(m)[h_start : h_start + 8 * nhash].cast("Q")
            # spot-check that the offsets still chain through this BTF
            ts = self.ts
            if offs[0] != 0 or self._rec_end(ts + 4 * offs[ntypes - 1]) != self.te:
                return False
            step = max(1, ntypes // 64)
            for i in range(0, ntypes - 1, step):
                if self._rec_end(ts + 4 * offs[i]) != ts + 4 * offs[i + 1]:
                    return False
        except (struct.error, ValueError, IndexError, TypeError):
            return False
        self._offs, self._hash, self._cache_map = offs, hashes, m
        return True

    def _write_cache(self, cdir: str, key: bytes) -> None:
        offs = self._offs if isinstance(self._offs, array) else array("I", self._offs)
        body = offs.tobytes() + b"\0" * (-(4 * len(offs)) % 8) + self._hash.tobytes()
        crc = zlib.crc32(body)
        hdr = _CACHE_HDR.pack(_CACHE_MAGIC, key, len(offs), len(self._hash), crc)
        tmp = os.path.join(cdir, f".{CACHE_NAME}.{os.getpid()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(b"".join([hdr, b"\0" * (-len(hdr) % 8), body]))
            os.replace(tmp, os.path.join(cdir, CACHE_NAME))
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def _rec_end(self, pos: int) -> int:
        (info,) = struct.unpack_from("<I", self.data, pos + 4)
        k = (info >> 24) & 0x1F
        if k >= len(_FIX):
            raise ValueError("bad kind")
        return pos + 12 + 4 * (_FIX[k] + _PER[k] * (info & 0xFFFF))

    def _walk(self) -> None:
        """One pass over the type section: the position and name of every record."""
        ts, te = self.ts, self.te
        w = memoryview(self.data)[ts:te]
        if len(w) % 4:
            raise _btf.BTFError("BTF type section not word aligned")
        w = w.cast("I")
        offs: list[int] = []  # the word index of each record
        names: list[int] = []  # each record's name_off
        ap, apn = offs.append, names.append
        step: dict[int, int] = {}
        get = step.get
        i, n = 0, len(w)
        try:
            while i < n:
                ap(i)
                apn(w[i])
                info = w[i + 1]
                s = get(info)
                if s is None:
                    k = (info >> 24) & 0x1F
                    if k >= len(_FIX):
                        raise _btf.BTFError(f"unknown BTF kind {k}")
                    s = step[info] = 3 + _FIX[k] + _PER[k] * (info & 0xFFFF)
                i += s
        except IndexError:
            raise _btf.BTFError("BTF type section truncated") from None
        if i != n:
            raise _btf.BTFError("BTF type section truncated")
        self._offs = array("I", offs)
        self._names = array("I", names)
        self._names_bytes = self._names.tobytes()

    def _build_hash(self) -> None:
        """crc32(essential name) << 32 | id for every named type, sorted.

        The string section is split and hashed at C speed; flavored names
        (``X___Y``) are rehashed by essential name, and a name offset into the
        middle of a string is hashed on its own.
        """
        strs = bytes(self.data[self.ss : self.se])
        parts = strs.split(b"\0")
        crcs = _Crcs(zip(accumulate([len(p) + 1 for p in parts], initial=0), map(zlib.crc32, parts), strict=False))
        crcs.strs = strs
        pos = strs.find(b"___")
        while pos >= 0:
            start = strs.rfind(b"\0", 0, pos) + 1
            end = strs.find(b"\0", pos)
            end = len(strs) if end < 0 else end
            crcs[start] = zlib.crc32(essential_name(strs[start:end].decode(errors="replace")).encode())
            pos = strs.find(b"___", end)
        names = self._names
        ids = compress(range(1, len(names) + 1), names)
        hashes = map(crcs.__getitem__, compress(names, names))
        self._hash = array("Q", sorted([h << 32 | i for h, i in zip(hashes, ids, strict=True)]))

    # -- the target interface
    @property
    def nr_types(self) -> int:
        return len(self._offs)

    def type(self, type_id: int) -> Type:
        t = self._types.get(type_id)
        if t is None:
            if type_id <= 0 or type_id > len(self._offs):
                raise _btf.BTFError(f"type id {type_id} out of range")
            try:
                t, _ = _btf._read_type(self.data, self.ts + 4 * self._offs[type_id - 1])
            except struct.error:
                raise _btf.BTFError(f"type {type_id} truncated") from None
            self._types[type_id] = t
        return t

    def name(self, off: int) -> str:
        got = self._strs.get(off)
        if got is not None:
            return got
        p = self.ss + off
        if off < 0 or p >= self.se:
            if off == 0:
                return ""
            raise _btf.BTFError(f"string offset {off} out of range")
        end = self.data.find(b"\0", p, self.se)
        got = self._strs[off] = self.data[p : end if end >= 0 else self.se].decode(errors="replace")
        return got

    def candidates(self, ess: str) -> list[int]:
        got = self._cands.get(ess)
        if got is None:
            got = self._cands[ess] = self._find(ess)
        return got

    def find(self, name: str, kind: int) -> int:
        """The first id of a type named exactly ``name`` of ``kind``, 0 if none."""
        if not name:
            return 0
        for tid in self.candidates(essential_name(name)):
            t = self.type(tid)
            if t.kind == kind and self.name(t.name_off) == name:
                return tid
        return 0

    def _find(self, ess: str) -> list[int]:
        if not ess:
            return []
        if self._hash is not None:
            h = zlib.crc32(ess.encode())
            lo = h << 32
            i = bisect.bisect_left(self._hash, lo)
            ids = []
            hashes = self._hash
            while i < len(hashes) and hashes[i] >> 32 == h:
                tid = hashes[i] & 0xFFFFFFFF
                if essential_name(self.name(self.type(tid).name_off)) == ess:
                    ids.append(tid)
                i += 1
            return ids
        # no hash table: find the strings, then the records naming them
        data, ss, se = self.data, self.ss, self.se
        raw = ess.encode()
        str_offs = []
        p = data.find(b"\0" + raw + b"\0", ss, se)
        if p >= 0:
            str_offs.append(p + 1 - ss)
        p = data.find(b"\0" + raw + b"___", ss, se)
        while p >= 0:
            end = data.find(b"\0", p + 1, se)
            if essential_name(data[p + 1 : end].decode(errors="replace")) == ess:
                str_offs.append(p + 1 - ss)
            p = data.find(b"\0" + raw + b"___", p + 1, se)
        names = self._names_bytes
        ids = []
        for off in str_offs:
            pat = struct.pack("<I", off)
            q = names.find(pat)
            while q >= 0:
                if q % 4 == 0:
                    ids.append(q // 4 + 1)
                q = names.find(pat, q + 1)
        ids.sort()
        return ids


_kernel: KernelBtf | None = None
_kernel_error: Exception | None = None


def kernel_btf() -> KernelBtf:
    """The running kernel's BTF, opened and indexed once per process.

    Raises OSError (no such file, no permission) or ``bpft.btf.BTFError``
    (malformed), again on every call if it failed once.
    """
    global _kernel, _kernel_error
    if _kernel is None:
        if _kernel_error is not None:
            raise _kernel_error
        try:
            _kernel = KernelBtf()
        except (OSError, _btf.BTFError) as e:
            _kernel_error = e
            raise
    return _kernel


def find_kernel_type(name: str, kind: int) -> int:
    """The id of vmlinux's first type ``name`` of ``kind`` (libbpf's btf__find_by_name_kind), 0 if none.

    0 too when the kernel's BTF cannot be read.
    """
    try:
        return kernel_btf().find(name, kind)
    except (OSError, _btf.BTFError):
        return 0


_kallsyms: dict[str, int] | None = None


def kallsyms() -> dict[str, int]:
    """/proc/kallsyms as name -> address (the first of a name), read once; empty if unreadable."""
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
