"""Asking the kernel what is attached: BPF_PROG_QUERY and BPF_TASK_FD_QUERY.

``BPF_PROG_QUERY`` lists the programs attached to one hook of a target (a
cgroup, a network namespace, an interface's tcx hook, a sockmap);
``BPF_TASK_FD_QUERY`` says which program a process's perf event or raw
tracepoint fd runs, and on what. Layouts are ``union bpf_attr``'s ``query``
and ``task_fd_query``.
"""

from __future__ import annotations

import ctypes
import errno
from enum import IntEnum
from typing import NamedTuple

from . import syscall as sc

_u32, _u64 = ctypes.c_uint32, ctypes.c_uint64


class _QueryAttr(ctypes.Structure):
    _fields_ = [
        ("target_fd", _u32),  # also target_ifindex
        ("attach_type", _u32),
        ("query_flags", _u32),
        ("attach_flags", _u32),
        ("prog_ids", _u64),
        ("prog_cnt", _u32),
        ("_pad", _u32),
        ("prog_attach_flags", _u64),
        ("link_ids", _u64),
        ("link_attach_flags", _u64),
        ("revision", _u64),
    ]


class Query(NamedTuple):
    """What one hook holds: program ids, and the link id of each (0 where attached without one)."""

    prog_ids: list[int]
    link_ids: list[int]


def prog_query(target: int, attach_type: int, capacity: int = 64) -> Query:
    """BPF_PROG_QUERY of one hook; ``target`` is an fd (or an ifindex for tcx). Raises BpfError.

    Kernels without link ids in the reply (before 6.6) leave them 0.
    """
    progs = (_u32 * capacity)()
    links = (_u32 * capacity)()
    attr = _QueryAttr(
        target_fd=target,
        attach_type=attach_type,
        prog_ids=ctypes.addressof(progs),
        prog_cnt=capacity,
        link_ids=ctypes.addressof(links),
    )
    try:
        sc.bpf(sc.PROG_QUERY, attr)
    except sc.BpfError as e:
        if e.errno != errno.EINVAL:
            raise
        # a kernel before 6.6 refuses the link_ids field: ask without it
        attr = _QueryAttr(
            target_fd=target, attach_type=attach_type, prog_ids=ctypes.addressof(progs), prog_cnt=capacity
        )
        sc.bpf(sc.PROG_QUERY, attr)
    count = min(attr.prog_cnt, capacity)
    return Query(list(progs[:count]), list(links[:count]))


class TaskFdType(IntEnum):
    """enum bpf_task_fd_type."""

    RAW_TRACEPOINT = 0
    TRACEPOINT = 1
    KPROBE = 2
    KRETPROBE = 3
    UPROBE = 4
    URETPROBE = 5


class _TaskFdAttr(ctypes.Structure):
    _fields_ = [
        ("pid", _u32),
        ("fd", _u32),
        ("flags", _u32),
        ("buf_len", _u32),
        ("buf", _u64),
        ("prog_id", _u32),
        ("fd_type", _u32),
        ("probe_offset", _u64),
        ("probe_addr", _u64),
    ]


class TaskFd(NamedTuple):
    """A process's fd that runs a program: the program, the kind of event, its name and place."""

    prog_id: int
    fd_type: int
    name: str
    probe_offset: int
    probe_addr: int


def task_fd_query(pid: int, fd: int) -> TaskFd:
    """BPF_TASK_FD_QUERY of ``fd`` in process ``pid``. Raises BpfError (ENOENT: no program)."""
    buf = ctypes.create_string_buffer(512)
    attr = _TaskFdAttr(pid=pid, fd=fd, buf_len=ctypes.sizeof(buf), buf=ctypes.addressof(buf))
    sc.bpf(sc.TASK_FD_QUERY, attr)
    return TaskFd(attr.prog_id, attr.fd_type, buf.value.decode(errors="replace"), attr.probe_offset, attr.probe_addr)
