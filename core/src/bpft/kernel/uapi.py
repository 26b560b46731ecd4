"""Kernel enum values and the names bpftool v7.1 (libbpf 1.1) prints for them.

The names are libbpf 1.1's: a program type newer than that release has no
name there, so bpftool v7.1 prints ``type N`` for it, and so do we.

Each kernel enum is an :class:`~enum.IntEnum` (``ProgType.XDP``); the name tables
(``PROG_TYPE_NAMES``, ``PROG_TYPE``, ...) are derived from the enums.
"""

from __future__ import annotations

from enum import IntEnum


class ProgType(IntEnum):
    """enum bpf_prog_type, as far as libbpf 1.1 names it; the name is libbpf's, lower-cased."""

    UNSPEC = 0
    SOCKET_FILTER = 1
    KPROBE = 2
    SCHED_CLS = 3
    SCHED_ACT = 4
    TRACEPOINT = 5
    XDP = 6
    PERF_EVENT = 7
    CGROUP_SKB = 8
    CGROUP_SOCK = 9
    LWT_IN = 10
    LWT_OUT = 11
    LWT_XMIT = 12
    SOCK_OPS = 13
    SK_SKB = 14
    CGROUP_DEVICE = 15
    SK_MSG = 16
    RAW_TRACEPOINT = 17
    CGROUP_SOCK_ADDR = 18
    LWT_SEG6LOCAL = 19
    LIRC_MODE2 = 20
    SK_REUSEPORT = 21
    FLOW_DISSECTOR = 22
    CGROUP_SYSCTL = 23
    RAW_TRACEPOINT_WRITABLE = 24
    CGROUP_SOCKOPT = 25
    TRACING = 26
    STRUCT_OPS = 27
    EXT = 28
    LSM = 29
    SK_LOOKUP = 30
    SYSCALL = 31


def _name_tables(kind: type[IntEnum], last: int | None = None) -> tuple[tuple[str, ...], dict[str, int]]:
    """An enum's names by value (index = value) and its values by name; with ``last``,
    only the members up to it (the names libbpf 1.1 knows, which bpftool 7.1 prints)."""
    names = tuple(member.name.lower() for member in kind if last is None or member <= last)
    return names, {name: i for i, name in enumerate(names)}


def _name(names: tuple[str, ...], value: int) -> str | None:
    return names[value] if 0 <= value < len(names) else None


PROG_TYPE_NAMES, PROG_TYPE = _name_tables(ProgType)


class MapType(IntEnum):
    """enum bpf_map_type, as far as libbpf 1.1 names it."""

    UNSPEC = 0
    HASH = 1
    ARRAY = 2
    PROG_ARRAY = 3
    PERF_EVENT_ARRAY = 4
    PERCPU_HASH = 5
    PERCPU_ARRAY = 6
    STACK_TRACE = 7
    CGROUP_ARRAY = 8
    LRU_HASH = 9
    LRU_PERCPU_HASH = 10
    LPM_TRIE = 11
    ARRAY_OF_MAPS = 12
    HASH_OF_MAPS = 13
    DEVMAP = 14
    SOCKMAP = 15
    CPUMAP = 16
    XSKMAP = 17
    SOCKHASH = 18
    CGROUP_STORAGE = 19
    REUSEPORT_SOCKARRAY = 20
    PERCPU_CGROUP_STORAGE = 21
    QUEUE = 22
    STACK = 23
    SK_STORAGE = 24
    DEVMAP_HASH = 25
    STRUCT_OPS = 26
    RINGBUF = 27
    INODE_STORAGE = 28
    TASK_STORAGE = 29
    BLOOM_FILTER = 30
    USER_RINGBUF = 31
    CGRP_STORAGE = 32


MAP_TYPE_NAMES, MAP_TYPE = _name_tables(MapType)

# map-in-map types: their values are other maps (created with an inner map's definition)
MAP_IN_MAP_TYPES = frozenset({MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS})


class AttachType(IntEnum):
    """enum bpf_attach_type."""

    CGROUP_INET_INGRESS = 0
    CGROUP_INET_EGRESS = 1
    CGROUP_INET_SOCK_CREATE = 2
    CGROUP_SOCK_OPS = 3
    SK_SKB_STREAM_PARSER = 4
    SK_SKB_STREAM_VERDICT = 5
    CGROUP_DEVICE = 6
    SK_MSG_VERDICT = 7
    CGROUP_INET4_BIND = 8
    CGROUP_INET6_BIND = 9
    CGROUP_INET4_CONNECT = 10
    CGROUP_INET6_CONNECT = 11
    CGROUP_INET4_POST_BIND = 12
    CGROUP_INET6_POST_BIND = 13
    CGROUP_UDP4_SENDMSG = 14
    CGROUP_UDP6_SENDMSG = 15
    LIRC_MODE2 = 16
    FLOW_DISSECTOR = 17
    CGROUP_SYSCTL = 18
    CGROUP_UDP4_RECVMSG = 19
    CGROUP_UDP6_RECVMSG = 20
    CGROUP_GETSOCKOPT = 21
    CGROUP_SETSOCKOPT = 22
    TRACE_RAW_TP = 23
    TRACE_FENTRY = 24
    TRACE_FEXIT = 25
    MODIFY_RETURN = 26
    LSM_MAC = 27
    TRACE_ITER = 28
    CGROUP_INET4_GETPEERNAME = 29
    CGROUP_INET6_GETPEERNAME = 30
    CGROUP_INET4_GETSOCKNAME = 31
    CGROUP_INET6_GETSOCKNAME = 32
    XDP_DEVMAP = 33
    CGROUP_INET_SOCK_RELEASE = 34
    XDP_CPUMAP = 35
    SK_LOOKUP = 36
    XDP = 37
    SK_SKB_VERDICT = 38
    SK_REUSEPORT_SELECT = 39
    SK_REUSEPORT_SELECT_OR_MIGRATE = 40
    PERF_EVENT = 41
    TRACE_KPROBE_MULTI = 42
    LSM_CGROUP = 43
    # newer than libbpf 1.1: no names in ATTACH_TYPE_NAMES (bpftool 7.1 prints the number)
    STRUCT_OPS = 44
    NETFILTER = 45
    TCX_INGRESS = 46
    TCX_EGRESS = 47


ATTACH_TYPE_NAMES, ATTACH_TYPE = _name_tables(AttachType, last=AttachType.LSM_CGROUP)


def prog_type_name(value: int) -> str | None:
    """libbpf 1.1's name of a program type, or None if it has none."""
    return _name(PROG_TYPE_NAMES, value)


def map_type_name(value: int) -> str | None:
    return _name(MAP_TYPE_NAMES, value)


def attach_type_name(value: int) -> str | None:
    return _name(ATTACH_TYPE_NAMES, value)


class LinkType(IntEnum):
    """enum bpf_link_type."""

    UNSPEC = 0
    RAW_TRACEPOINT = 1
    TRACING = 2
    CGROUP = 3
    ITER = 4
    NETNS = 5
    XDP = 6
    PERF_EVENT = 7
    KPROBE_MULTI = 8
    STRUCT_OPS = 9
    # newer than libbpf 1.1: no names in LINK_TYPE_NAMES (bpftool 7.1 prints "type N")
    NETFILTER = 10
    TCX = 11
    UPROBE_MULTI = 12
    NETKIT = 13
    SOCKMAP = 14


#: libbpf 1.1's names of the link types (what bpftool 7.1 prints), by value
LINK_TYPE_NAMES, LINK_TYPE = _name_tables(LinkType, last=LinkType.STRUCT_OPS)


def link_type_name(value: int) -> str | None:
    return _name(LINK_TYPE_NAMES, value)
