"""BPF links: creating them, reading their info, walking them, detaching them.

The layouts are the kernel UAPI's (``union bpf_attr``'s ``link_create`` and
``link_detach``, ``struct bpf_link_info``). :func:`link_info` decodes the
per-type part of a link's info into a :class:`LinkInfo` whose ``fields``
hold what the kernel said, by the kernel's names; naming the target for a
person (interface names, cgroup paths) is :mod:`bpft.attachments`' job.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Iterator
from enum import IntEnum

from ..records import NamedTuple  # typing's, without importing typing (start-up)
from . import syscall as sc
from .uapi import LinkType

_u32, _u64 = ctypes.c_uint32, ctypes.c_uint64


class PerfEventType(IntEnum):
    """enum bpf_perf_event_type: what a perf-event link's event is."""

    UNSPEC = 0
    UPROBE = 1
    URETPROBE = 2
    KPROBE = 3
    KRETPROBE = 4
    TRACEPOINT = 5
    EVENT = 6


class XdpFlags(IntEnum):
    """XDP_FLAGS_*: the attach mode of an XDP program."""

    UPDATE_IF_NOEXIST = 1 << 0
    SKB_MODE = 1 << 1
    DRV_MODE = 1 << 2
    HW_MODE = 1 << 3


class _LinkInfoStruct(ctypes.Structure):
    """struct bpf_link_info: the header, then the per-type union as raw words."""

    _fields_ = [("type", _u32), ("id", _u32), ("prog_id", _u32), ("_pad", _u32), ("union", ctypes.c_uint8 * 64)]


class LinkInfo(NamedTuple):
    """A link's info: ``fields`` are the per-type members by the kernel's names."""

    id: int
    type: int
    prog_id: int
    fields: dict


def _name_buffer(size: int = 512):
    return ctypes.create_string_buffer(size)


def _string(buf) -> str:
    return buf.value.decode(errors="replace")


def link_info(fd: int) -> LinkInfo:
    """OBJ_GET_INFO_BY_FD on a link, with the names (tracepoint, function, file) it carries.

    Raises BpfError. Each type with a name asks once with a buffer for it, as
    bpftool does.
    """
    info = _LinkInfoStruct()
    sc.obj_get_info_by_fd(fd, info)
    u = bytes(info.union)
    kind = info.type
    fields: dict = {}
    if kind == LinkType.RAW_TRACEPOINT:
        fields["tp_name"] = _with_name(fd, 0, 8)
    elif kind == LinkType.TRACING:
        fields["attach_type"], fields["target_obj_id"], fields["target_btf_id"] = struct.unpack_from("<III", u)
    elif kind == LinkType.CGROUP:
        fields["cgroup_id"], fields["attach_type"] = struct.unpack_from("<QI", u)
    elif kind == LinkType.ITER:
        fields["target_name"] = _with_name(fd, 0, 8)
        fields["map_id"] = struct.unpack_from("<I", u, 12)[0]
    elif kind == LinkType.NETNS:
        fields["netns_ino"], fields["attach_type"] = struct.unpack_from("<II", u)
    elif kind == LinkType.XDP:
        fields["ifindex"] = struct.unpack_from("<I", u)[0]
    elif kind == LinkType.STRUCT_OPS:
        fields["map_id"] = struct.unpack_from("<I", u)[0]
    elif kind in (LinkType.TCX, LinkType.NETKIT):
        fields["ifindex"], fields["attach_type"] = struct.unpack_from("<II", u)
    elif kind == LinkType.SOCKMAP:
        fields["map_id"], fields["attach_type"] = struct.unpack_from("<II", u)
    elif kind == LinkType.PERF_EVENT:
        fields.update(_perf_event_fields(fd, u))
    return LinkInfo(info.id, kind, info.prog_id, fields)


def _with_name(fd: int, ptr_off: int, len_off: int) -> str:
    """Ask again with a buffer at union offset ``ptr_off`` (its length at ``len_off``)."""
    buf = _name_buffer()
    info = _LinkInfoStruct()
    struct.pack_into("<Q", info.union, ptr_off, ctypes.addressof(buf))
    struct.pack_into("<I", info.union, len_off, ctypes.sizeof(buf))
    sc.obj_get_info_by_fd(fd, info)
    return _string(buf)


_NAMED_PERF_EVENTS = frozenset(
    (
        PerfEventType.UPROBE,
        PerfEventType.URETPROBE,
        PerfEventType.KPROBE,
        PerfEventType.KRETPROBE,
        PerfEventType.TRACEPOINT,
    )
)


def _perf_event_fields(fd: int, first: bytes) -> dict:
    """A perf-event link's event (kernels from 6.6 report it; older ones say only the type)."""
    (event_type,) = struct.unpack_from("<I", first)
    fields: dict = {"event_type": event_type}
    if event_type == PerfEventType.EVENT:
        fields["config"], fields["type"] = struct.unpack_from("<QI", first, 8)
    if event_type not in _NAMED_PERF_EVENTS:
        return fields
    # {u32 type; u32 pad; u64 name; u32 name_len; u32 offset; u64 addr or cookie; ...}
    buf = _name_buffer()
    info = _LinkInfoStruct()
    struct.pack_into("<Q", info.union, 8, ctypes.addressof(buf))
    struct.pack_into("<I", info.union, 16, ctypes.sizeof(buf))
    try:
        sc.obj_get_info_by_fd(fd, info)
    except OSError:
        return fields
    u = bytes(info.union)
    name = _string(buf)
    if event_type in (PerfEventType.UPROBE, PerfEventType.URETPROBE):
        fields["file_name"] = name
        fields["offset"] = struct.unpack_from("<I", u, 20)[0]
    elif event_type == PerfEventType.TRACEPOINT:
        fields["tp_name"] = name
    else:
        fields["func_name"] = name
        fields["offset"], fields["addr"] = struct.unpack_from("<IQ", u, 20)
    return fields


def link_ids() -> Iterator[int]:
    """The ids of every link, in ascending order (LINK_GET_NEXT_ID)."""
    link_id = 0
    while True:
        nxt = sc.link_get_next_id(link_id)
        if nxt is None:
            return
        link_id = nxt
        yield link_id


def all_links() -> Iterator[LinkInfo]:
    """The info of every link the kernel has (links that go meanwhile are skipped)."""
    for link_id in link_ids():
        try:
            fd = sc.link_get_fd_by_id(link_id)
        except OSError:
            continue
        try:
            yield link_info(fd)
        except OSError:
            continue
        finally:
            os.close(fd)


class _LinkDetachAttr(ctypes.Structure):
    _fields_ = [("link_fd", _u32)]


def link_detach(fd: int) -> None:
    """BPF_LINK_DETACH: the link stays (pins and fds keep it) but is attached no more.

    Raises BpfError; EOPNOTSUPP for link types the kernel cannot detach this
    way (perf events, raw tracepoints): those go when their last reference does.
    """
    sc.bpf(sc.LINK_DETACH, _LinkDetachAttr(link_fd=fd))


_ENOTSUPP = 524  # the kernel's own "not supported", which bpf() lets out


def cannot_detach(err: OSError) -> bool:
    """Whether LINK_DETACH's failure means 'not for this link type'."""
    return err.errno in (errno.EOPNOTSUPP, errno.EINVAL, _ENOTSUPP)
