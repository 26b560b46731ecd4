"""Program-level helpers every verb shares: iteration, full names, pins.

Iteration tolerates programs that disappear while we walk the id space: a
program unloaded between GET_NEXT_ID and GET_FD_BY_ID (ENOENT), or whose info
can no longer be read, is skipped.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterator

from .errors import BpftError
from .kernel import info as kinfo
from .kernel import syscall as sc
from .records import TYPE_CHECKING

MAX_PROG_FULL_NAME = 128


def _next_prog_id(prog_id: int) -> int | None:
    """GET_NEXT_ID with bpftool's message when the walk fails."""
    try:
        return sc.prog_get_next_id(prog_id)
    except OSError as e:
        hint = " -- kernel too old?" if e.errno == errno.EINVAL else ""
        raise BpftError(f"can't get next program: {e.strerror}{hint}") from None


def iter_prog_ids(start: int = 0, stop: int | None = None) -> Iterator[int]:
    """Program ids after ``start`` up to ``stop`` (inclusive), ascending.

    Raises bpftool's message if the walk fails.
    """
    prog_id = start
    while True:
        nxt = _next_prog_id(prog_id)
        if nxt is None or (stop is not None and nxt > stop):
            return
        prog_id = nxt
        yield prog_id


_open_prog_id = sc.id_opener(sc.PROG_GET_FD_BY_ID)


def _next_prog_fd(prog_id: int, stop: int | None) -> tuple[int, int] | None:
    """The slow step of a walk, where the id after ``prog_id`` is not there: the kernel names
    the next program (GET_NEXT_ID), which is opened; ``(id, fd)``, or None past ``stop`` or at
    the end. Programs unloaded meanwhile are skipped; other failures are bpftool's errors."""
    while True:
        nxt = _next_prog_id(prog_id)
        if nxt is None or (stop is not None and nxt > stop):
            return None
        fd = open_prog(nxt)
        if fd is not None:
            return nxt, fd
        prog_id = nxt


def render_prog_infos(
    render, out: list, start: int = 0, stop: int | None = None, full: bool = False, read=None
) -> None:
    """Append ``render(fd, info)`` to ``out`` for each program with ``start < id <= stop``,
    ascending: the loop of a listing.

    ``info`` is the :data:`~bpft.kernel.info.LIST_FIELDS` tuple of
    :func:`~bpft.kernel.info.prog_list_info`, or with ``full`` the whole
    :class:`~bpft.kernel.info.ProgInfoRec`, or what ``read(fd)`` returns (a reader
    of :func:`~bpft.kernel.info.prog_fields_reader`); ``fd`` is closed once ``render``
    returns (``os.dup`` it to keep it). Programs loaded together have
    consecutive ids, so the id after the last one is tried directly (one
    GET_FD_BY_ID); only when it is not there does the kernel name the next one
    (:func:`_next_prog_fd`). One loop, with no generator between the kernel
    calls and ``render``: a listing of thousands of programs runs it for each.
    Programs unloaded meanwhile are skipped; any other failure to read an info
    raises bpftool's error, and ``out`` keeps what came before it.
    """
    if read is None:
        read = kinfo.prog_info if full else kinfo.prog_list_info
    open_id, close, append = _open_prog_id, os.close, out.append
    prog_id = start
    while stop is None or prog_id < stop:
        fd = open_id(prog_id + 1)
        if fd >= 0:
            prog_id += 1
        else:
            step = _next_prog_fd(prog_id, stop)
            if step is None:
                return
            prog_id, fd = step
        try:
            info = read(fd)
        except OSError as e:
            close(fd)
            if e.errno == errno.ENOENT:  # unloaded between GET_FD_BY_ID and GET_INFO
                continue
            raise BpftError(f"can't get prog info: {e.strerror}") from None
        try:
            append(render(fd, info))
        finally:
            close(fd)


def last_prog_id(known: int) -> int:
    """The highest program id, by bisecting GET_NEXT_ID above ``known`` (an id that exists)."""
    lo, hi = known, 0x7FFFFFFF  # lo exists (or is our floor); nothing is above hi
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            above = sc.prog_get_next_id(mid - 1)
        except OSError:
            above = None
        if above is not None:
            lo = max(mid, above)
        else:
            hi = mid - 1
    return lo


def prog_id_span() -> tuple[int, int] | None:
    """The lowest and the highest program id, or None when no program is loaded.

    A long listing cuts this span into ranges for its workers, so nobody
    walks the whole id space first.
    """
    first = next(iter_prog_ids(), None)
    return None if first is None else (first, last_prog_id(first))


def id_ranges(first: int, last: int, count: int) -> list[tuple[int, int]]:
    """The ids from ``first`` to ``last`` cut into ``count`` ranges of equal width;
    ``(start, stop)`` means ids with ``start < id <= stop``."""
    width = last - first + 1
    bounds = [first - 1 + width * i // count for i in range(count + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(count)]


def open_prog(prog_id: int) -> int | None:
    """An fd for the program, or None if it was unloaded meanwhile."""
    try:
        return sc.prog_get_fd_by_id(prog_id)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return None
        raise BpftError(f"can't get prog by id ({prog_id}): {e.strerror}") from None


if TYPE_CHECKING:  # typing costs start-up (~2 ms): for the checker only
    from typing import Protocol

    class _NamedProgInfo(Protocol):
        """The program info fields :func:`full_name` reads: a ProgInfo or a ProgInfoRec."""

        @property
        def name(self) -> bytes: ...
        @property
        def btf_id(self) -> int: ...
        @property
        def nr_func_info(self) -> int: ...
        @property
        def func_info_rec_size(self) -> int: ...


def full_name(fd: int, info: _NamedProgInfo) -> str:
    """bpftool's get_prog_full_name(): the BTF function name when the kernel's is truncated.

    The kernel keeps 15 characters of a name; when a name is that long and
    the program has BTF func_info, the first function's BTF name is the full
    one.
    """
    name = info.name.decode(errors="replace")
    if len(info.name) < kinfo.BPF_OBJ_NAME_LEN - 1 or not info.btf_id or not info.nr_func_info:
        return name
    try:
        rec = ctypes.create_string_buffer(8)
        q = kinfo.ProgInfo(nr_func_info=1, func_info_rec_size=min(info.func_info_rec_size, 8))
        q.func_info = ctypes.addressof(rec)
        sc.obj_get_info_by_fd(fd, q)
        type_id = int.from_bytes(rec.raw[4:8], "little")
        from .btf import func_name_from_kernel

        return func_name_from_kernel(q.btf_id, type_id) or name
    except (OSError, ValueError):
        return name


def pinned_paths(kind: str) -> dict[int, list[str]]:
    """Paths of pinned objects of ``kind`` ('prog', 'map', 'link') by id, as bpftool -f builds them.

    Every bpffs mount is walked (nftw order); for one id, paths are listed in
    the reverse order of discovery, as libbpf's hashmap returns them.
    """
    from .kernel import fs

    table: dict[int, list[str]] = {}
    for mnt in fs.bpffs_mounts():
        for path in fs.walk_files(mnt):
            try:
                fd = sc.obj_get(path)
            except OSError:
                continue
            try:
                if fs.fd_kind(fd) != kind:
                    continue
                if kind == "map":
                    obj_id = kinfo.map_info(fd).id
                else:
                    obj_id = kinfo.prog_info(fd).id if kind == "prog" else _link_id(fd)
            except OSError:
                continue
            finally:
                os.close(fd)
            table.setdefault(obj_id, []).insert(0, path)
    return table


def _link_id(fd: int) -> int:
    buf = (ctypes.c_uint32 * 2)()
    sc.obj_get_info_by_fd(fd, buf)  # type: ignore[arg-type]
    return buf[1]
