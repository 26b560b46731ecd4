"""Loaded programs as plain records: the public :func:`iter_progs` and :func:`open_progs`.

A :class:`Program` holds values, not an fd: the walks open each program, read what
it is, close it, and only then hand the record over, so a caller that stops early
(or never stops) holds nothing open. Programs unloaded during a walk are skipped.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Sequence

from .errors import BpftError
from .kernel import info as kinfo
from .kernel import uapi
from .records import NamedTuple


class Program(NamedTuple):
    """One loaded program, as bpftool's ``prog show`` describes it (the fields after
    ``tag`` default to zero, for tests that make their own)."""

    id: int
    type: str  # bpftool's name ("xdp", "sched_cls"); the number as text for a type it has no name for
    name: str  # the full name (from BTF when the kernel's 15 characters cut it short)
    tag: str  # 16 hex digits
    type_id: int = 0  # enum bpf_prog_type
    gpl_compatible: bool = False
    load_time: int = 0  # nanoseconds since boot, as the kernel reports it
    uid: int = 0  # created_by_uid
    bytes_xlated: int = 0
    bytes_jited: int = 0
    map_ids: tuple[int, ...] = ()
    btf_id: int = 0  # 0 without BTF
    run_time_ns: int = 0  # with BPF statistics enabled, else 0
    run_cnt: int = 0
    verified_insns: int = 0


def _program(fd: int, info: kinfo.ProgInfoRec) -> Program:
    from .progs import full_name

    type_name = uapi.prog_type_name(info.type)
    return Program(
        id=info.id,
        type=type_name if type_name is not None else str(info.type),
        name=full_name(fd, info),  # type: ignore[arg-type]  # reads only the fields both info types have
        tag=bytes(info.tag).hex(),
        type_id=info.type,
        gpl_compatible=bool(info.gpl_compatible),
        load_time=info.load_time,
        uid=info.created_by_uid,
        bytes_xlated=info.xlated_prog_len,
        bytes_jited=info.jited_prog_len,
        map_ids=tuple(kinfo.prog_map_ids(fd, info.nr_map_ids)),
        btf_id=info.btf_id,
        run_time_ns=info.run_time_ns,
        run_cnt=info.run_cnt,
        verified_insns=info.verified_insns,
    )


def _describe(fd: int) -> Program | None:
    """The record of the program ``fd`` holds (None if it went away); closes ``fd``."""
    try:
        return _program(fd, kinfo.prog_info(fd))
    except OSError as e:
        if e.errno == errno.ENOENT:
            return None
        raise BpftError(f"can't get prog info: {e.strerror}") from None
    finally:
        os.close(fd)


def iter_progs() -> Iterator[Program]:
    """Every loaded program, by ascending id (needs CAP_SYS_ADMIN, as bpftool does).

    Raises ``BpftError`` with bpftool's message when the kernel refuses the walk.
    """
    from .progs import iter_prog_ids, open_prog

    for prog_id in iter_prog_ids():
        fd = open_prog(prog_id)
        if fd is None:
            continue
        prog = _describe(fd)
        if prog is not None:
            yield prog


def open_progs(words: Sequence[str]) -> list[Program]:
    """The programs a handle names: ``["id", "7"]``, ``["name", "x"]``, ``["tag", "..."]``,
    ``["pinned", "/sys/fs/bpf/p"]`` (or a handle kind a plugin adds), keywords by prefix.

    ``tag`` and ``name`` may name several programs, or none (an empty list). Raises
    ``BpftError`` with bpftool's messages for a handle it cannot read. Inside a verb
    the running context's handle kinds are used, elsewhere the installed plugins'.
    """
    from .api import Context, _current
    from .grammar import Args

    if _current:
        ctx = Context.current()
    else:
        from .api import Options
        from .output import PlainEmitter
        from .plugins import Registry

        ctx = Context(Options(), PlainEmitter(), Registry())
    args = Args(list(words))
    fds = ctx.prog_fds(args)
    programs: list[Program] = []
    try:
        if args:
            raise args.bad()
        while fds:
            prog = _describe(fds.pop())  # closes the fd it is given
            if prog is not None:
                programs.append(prog)
    finally:
        for fd in fds:
            os.close(fd)
    return sorted(programs, key=lambda p: p.id)
