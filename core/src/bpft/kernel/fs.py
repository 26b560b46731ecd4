"""bpffs and tracefs: detection, mounting, pinned-object walks, fd kinds.

Mounting follows bpftool: make the target a private mount (bind-mounting it
onto itself first if it is not a mount point yet), then mount the file system
with ``mode=0700``.
"""

from __future__ import annotations

import ctypes
import os
import stat as _stat

BPF_FS_MAGIC = 0xCAFE4A11
TRACEFS_MAGIC = 0x74726163
DEBUGFS_MAGIC = 0x64626720

MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

# fd kinds, as /proc/self/fd/N names them
OBJ_UNKNOWN, OBJ_PROG, OBJ_MAP, OBJ_LINK = "unknown", "prog", "map", "link"


class _StatFs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("_rest", ctypes.c_long * 15)]


_libc = ctypes.CDLL(None, use_errno=True)


def fs_magic(path: str) -> int | None:
    """The file system magic of ``path`` (statfs f_type), or None if it cannot be read."""
    st = _StatFs()
    if _libc.statfs(os.fsencode(path), ctypes.byref(st)) < 0:
        return None
    return st.f_type & 0xFFFFFFFF


def is_bpffs(path: str) -> bool:
    return fs_magic(path) == BPF_FS_MAGIC


def _mount(source: str, target: str, fstype: str, flags: int, data: str | None) -> None:
    ret = _libc.mount(
        os.fsencode(source),
        os.fsencode(target),
        os.fsencode(fstype),
        ctypes.c_ulong(flags),
        os.fsencode(data) if data is not None else None,
    )
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def mount_fs(target: str, fstype: str) -> None:
    """Mount ``fstype`` at ``target`` as bpftool does; raises OSError with bpftool's message."""
    bind_done = False
    while True:
        try:
            _mount("", target, "none", MS_PRIVATE | MS_REC, None)
            break
        except OSError as e:
            if e.errno != 22 or bind_done:  # EINVAL: not a mount point
                raise OSError(e.errno, f"mount --make-private {target} failed: {e.strerror}") from None
        try:
            _mount(target, target, "none", MS_BIND, None)
        except OSError as e:
            raise OSError(e.errno, f"mount --bind {target} {target} failed: {e.strerror}") from None
        bind_done = True
    try:
        _mount(fstype, target, fstype, 0, "mode=0700")
    except OSError as e:
        raise OSError(e.errno, f"mount -t {fstype} {fstype} {target} failed: {e.strerror}") from None


def fd_kind(fd: int) -> str:
    """'prog', 'map', 'link' or 'unknown', from the fd's anon inode name."""
    target = os.readlink(f"/proc/self/fd/{fd}")
    for kind in (OBJ_MAP, OBJ_PROG, OBJ_LINK):
        if f"bpf-{kind}" in target:
            return kind
    return OBJ_UNKNOWN


def fdinfo(fd: int, pid: int | str = "self") -> dict[str, str]:
    """The ``key:\\tvalue`` lines of /proc/PID/fdinfo/FD."""
    out = {}
    with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as f:
        for line in f.read().decode(errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep:
                out[key] = value.strip()
    return out


_fdinfo_dir = -1  # a dir fd on our /proc/self/fdinfo, opened on first use

# fd number -> an open /proc/self/fdinfo/<number>. procfs prints the file that holds
# that number *when the file is read*, so one open file serves every program a listing
# opens there in turn (it closes each fd before opening the next: the number repeats);
# a pread() replaces an open, a read and a close. A few numbers are kept at most.
_fdinfo_files: dict[int, int] = {}
_MAX_KEPT = 8


def _forget_fdinfo_dir() -> None:
    """After a fork: the inherited fds name the parent's fd table, not the child's."""
    global _fdinfo_dir
    for fd in [_fdinfo_dir, *_fdinfo_files.values()]:
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass
    _fdinfo_dir = -1
    _fdinfo_files.clear()


os.register_at_fork(after_in_child=_forget_fdinfo_dir)


#: The first read of an fdinfo file: a program's is ~250 bytes, and a read this short
#: keeps Python's buffer in its small-object allocator (~0.1 us a read cheaper than 4 KiB).
_FIRST_READ = 448


def _read_all(f: int, first: bytes) -> bytes:
    """The whole of fdinfo file ``f``, of which a first read filled ``first``."""
    size = 2 * len(first)
    while True:
        data = os.pread(f, size, 0)
        if len(data) < size:
            return data
        size *= 2


def _fdinfo_text(fd: int) -> bytes | None:
    """Our /proc/self/fdinfo/<fd>, through a kept file when its number has one; None if unreadable."""
    global _fdinfo_dir
    f = _fdinfo_files.get(fd)
    if f is None:
        try:
            if _fdinfo_dir < 0:
                _fdinfo_dir = os.open("/proc/self/fdinfo", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            f = os.open(str(fd), os.O_RDONLY | os.O_CLOEXEC, dir_fd=_fdinfo_dir)
        except OSError:
            return None
        if len(_fdinfo_files) < _MAX_KEPT:
            _fdinfo_files[fd] = f
        else:
            try:
                return _read_fdinfo(f)
            finally:
                os.close(f)
    return _read_fdinfo(f)


def _read_fdinfo(f: int) -> bytes | None:
    try:
        data = os.pread(f, _FIRST_READ, 0)
        return data if len(data) < _FIRST_READ else _read_all(f, data)
    except OSError:
        return None  # nothing holds that number now


def fdinfo_reader(key: str):
    """A function ``value(fd)``: bpftool's get_fdinfo() for ``key`` on our own fd ``fd``, as bytes.

    That is the text after the first tab of the first line that contains
    ``key`` (anywhere: bpftool matches with strstr()), up to the newline (a
    last line without one loses its last character, as in bpftool); None if
    no line has the key, the line has no tab, or the tab ends the file. A
    listing calls it once per program: the fdinfo files of the last few fd
    numbers are kept open and re-read (see ``_fdinfo_files``).
    """
    needle = key.encode()
    line_head = needle + b":\t"  # how the kernel writes its own keys
    plain_key = b"\t" not in needle and b"\n" not in needle
    kept = _fdinfo_files

    def value(fd: int) -> bytes | None:
        f = kept.get(fd)  # a listing finds its file kept: one call fewer than _fdinfo_text
        data = _read_fdinfo(f) if f is not None else _fdinfo_text(fd)
        if data is None:
            return None
        # The usual line, "key:\tvalue\n", by partition() (the cheapest way through bytes
        # here: find() with bounds parses its arguments slowly, and `in` tries the key as an
        # int first). It is the line bpftool takes when it starts with the key and no
        # earlier text has the key.
        head, found, rest = data.partition(line_head)
        if found and plain_key and (not head or head[-1] == 10) and head.find(needle) < 0:
            got, newline, _ = rest.partition(b"\n")
            if newline:
                return got
        pos = data.find(needle)
        return _value_in_line(data, pos, len(needle)) if pos >= 0 else None

    return value


def _value_in_line(data: bytes, pos: int, key_len: int) -> bytes | None:
    """get_fdinfo()'s value of the line holding ``data[pos:pos + key_len]``: after the line's
    first tab, up to the newline (a last line without one loses its last character)."""
    line = data.rfind(b"\n", 0, pos) + 1
    end = data.find(b"\n", pos + key_len)
    if end >= 0:
        tab = data.find(b"\t", line, end)
        return data[tab + 1 : end] if tab >= 0 else None
    tab = data.find(b"\t", line)
    return data[tab + 1 : -1] if 0 <= tab < len(data) - 1 else None


_readers: dict = {}  # key -> fdinfo_reader(key)


def fdinfo_value(fd: int, key: str) -> str | None:
    """:func:`fdinfo_reader`'s value for ``key`` on ``fd``, as text."""
    read = _readers.get(key)
    if read is None:
        read = _readers[key] = fdinfo_reader(key)
    value = read(fd)
    return value.decode(errors="replace") if value is not None else None


def bpffs_mounts() -> list[str]:
    """Mount points of bpf file systems, in /proc/mounts order."""
    out = []
    try:
        with open("/proc/mounts", "rb") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2].startswith(b"bpf"):
                    out.append(_unescape_mount(parts[1].decode(errors="surrogateescape")))
    except OSError:
        pass
    return out


def _unescape_mount(path: str) -> str:
    # /proc/mounts escapes space, tab, newline and backslash as octal
    if "\\" not in path:
        return path
    out, i = [], 0
    while i < len(path):
        if path[i] == "\\" and i + 3 < len(path) + 0 and path[i + 1 : i + 4].isdigit():
            out.append(chr(int(path[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def walk_files(top: str):
    """Regular files under ``top`` in nftw(FTW_PHYS) order: pre-order, readdir order, no symlinks followed."""
    try:
        entries = list(os.scandir(top))
    except OSError:
        return
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if _stat.S_ISDIR(st.st_mode):
            yield from walk_files(entry.path)
        elif _stat.S_ISREG(st.st_mode):
            yield entry.path


def c_dirname(path: str) -> str:
    """glibc dirname(): '/tmp' -> '/', 'a' -> '.', '/a/b/' -> '/a'."""
    p = path.rstrip("/")
    if not p:
        return "/" if path else "."
    head = p.rsplit("/", 1)[0] if "/" in p else "."
    return head.rstrip("/") or "/"
