"""rtnetlink for what BPF links do not cover: XDP's and tc's netlink side.

Interfaces with their XDP programs (``RTM_GETLINK``), the clsact qdisc
(``RTM_NEWQDISC``) and cls_bpf filters in direct-action mode
(``RTM_NEWTFILTER``/``RTM_DELTFILTER``/``RTM_GETTFILTER``). Layouts and numbers
are the kernel UAPI's (``linux/netlink.h``, ``linux/rtnetlink.h``,
``linux/if_link.h``, ``linux/pkt_sched.h``, ``linux/pkt_cls.h``). Everything
happens in the caller's network namespace. Failures are OSError with the
kernel's errno.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from enum import IntEnum

from ..records import NamedTuple  # typing's, without importing typing (start-up)

NETLINK_ROUTE = 0


class Msg(IntEnum):
    """Message types: netlink's own and rtnetlink's."""

    NOOP = 1
    ERROR = 2
    DONE = 3
    RTM_NEWLINK = 16
    RTM_GETLINK = 18
    RTM_SETLINK = 19
    RTM_NEWQDISC = 36
    RTM_NEWTFILTER = 44
    RTM_DELTFILTER = 45
    RTM_GETTFILTER = 46


class Flag(IntEnum):
    REQUEST = 0x1
    ACK = 0x4
    EXCL = 0x200
    CREATE = 0x400
    DUMP = 0x300


class Ifla(IntEnum):
    IFNAME = 3
    XDP = 43


class IflaXdp(IntEnum):
    FD = 1
    ATTACHED = 2
    FLAGS = 3
    PROG_ID = 4
    DRV_PROG_ID = 5
    SKB_PROG_ID = 6
    HW_PROG_ID = 7
    EXPECTED_FD = 8


class Tca(IntEnum):
    KIND = 1
    OPTIONS = 2


class TcaBpf(IntEnum):
    FD = 6
    NAME = 7
    FLAGS = 8
    ID = 11


TCA_BPF_FLAG_ACT_DIRECT = 1
NLA_F_NESTED = 1 << 15
ETH_P_ALL = 3

# tc handles: clsact's, and the parents of its two hooks
TC_H_CLSACT = 0xFFFFFFF1
TC_H_CLSACT_HANDLE = 0xFFFF0000
TC_PARENT_INGRESS = 0xFFFFFFF2
TC_PARENT_EGRESS = 0xFFFFFFF3

_NLMSGHDR = struct.Struct("=IHHII")
_NLATTR = struct.Struct("=HH")
_IFINFOMSG = struct.Struct("=BxHiII")
_TCMSG = struct.Struct("=BxxxiIII")


def _align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded."""
    data = _NLATTR.pack(_NLATTR.size + len(payload), kind) + payload
    return data + b"\0" * (_align(len(data)) - len(data))


def attrs(data: bytes) -> dict[int, bytes]:
    """The attributes in ``data`` by type (the nested flag cleared); the last one of a type wins."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos + _NLATTR.size <= len(data):
        length, kind = _NLATTR.unpack_from(data, pos)
        if length < _NLATTR.size:
            break
        out[kind & ~NLA_F_NESTED] = data[pos + _NLATTR.size : pos + length]
        pos += _align(length)
    return out


def _u32(data: bytes | None) -> int:
    return struct.unpack_from("=I", data)[0] if data and len(data) >= 4 else 0


def _cstr(data: bytes | None) -> str:
    return (data or b"").split(b"\0", 1)[0].decode(errors="replace")


class _Socket:
    """One rtnetlink request and its replies."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def request(self, msg_type: int, flags: int, body: bytes) -> Iterator[tuple[int, bytes]]:
        """Send one message; yield (type, payload) of each reply until DONE or the ACK.

        A negative error in the ACK raises OSError.
        """
        self.seq += 1
        header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), msg_type, flags | Flag.REQUEST, self.seq, 0)
        self.sock.send(header + body)
        while True:
            data = self.sock.recv(1 << 16)
            if not data:
                return
            pos = 0
            while pos + _NLMSGHDR.size <= len(data):
                length, rtype, _, seq, _ = _NLMSGHDR.unpack_from(data, pos)
                payload = data[pos + _NLMSGHDR.size : pos + length]
                pos += _align(length)
                if seq != self.seq:
                    continue
                if rtype == Msg.DONE:
                    return
                if rtype == Msg.ERROR:
                    (err,) = struct.unpack_from("=i", payload)
                    if err:
                        raise OSError(-err, os.strerror(-err))
                    return
                yield rtype, payload


def _ask(msg_type: int, flags: int, body: bytes) -> list[tuple[int, bytes]]:
    s = _Socket()
    try:
        return list(s.request(msg_type, flags, body))
    finally:
        s.close()


# --- XDP ---------------------------------------------------------------------------


class Interface(NamedTuple):
    """An interface and its XDP programs by mode (0 where none)."""

    ifindex: int
    name: str
    xdp_drv: int
    xdp_skb: int
    xdp_hw: int


def interfaces() -> list[Interface]:
    """Every interface of this network namespace, with its XDP program ids."""
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    out = []
    for rtype, payload in _ask(Msg.RTM_GETLINK, Flag.DUMP, body):
        if rtype != Msg.RTM_NEWLINK:
            continue
        _, _, index, _, _ = _IFINFOMSG.unpack_from(payload)
        top = attrs(payload[_IFINFOMSG.size :])
        xdp = attrs(top.get(Ifla.XDP, b""))
        out.append(
            Interface(
                index,
                _cstr(top.get(Ifla.IFNAME)),
                _u32(xdp.get(IflaXdp.DRV_PROG_ID)) or _single_mode(xdp, 1),
                _u32(xdp.get(IflaXdp.SKB_PROG_ID)) or _single_mode(xdp, 2),
                _u32(xdp.get(IflaXdp.HW_PROG_ID)) or _single_mode(xdp, 3),
            )
        )
    return out


def _single_mode(xdp: dict[int, bytes], mode: int) -> int:
    """IFLA_XDP_PROG_ID when one program is attached in ``mode`` (XDP_ATTACHED_DRV=1, SKB=2, HW=3)."""
    attached = xdp.get(IflaXdp.ATTACHED)
    return _u32(xdp.get(IflaXdp.PROG_ID)) if attached and attached[0] == mode else 0


def xdp_set(ifindex: int, prog_fd: int, flags: int, expected_fd: int = 0) -> None:
    """Attach (``prog_fd``) or detach (-1) an XDP program through netlink.

    With ``expected_fd``, the kernel replaces only that program (XDP_FLAGS_REPLACE).
    """
    inner = attr(IflaXdp.FD, struct.pack("=i", prog_fd)) + attr(IflaXdp.FLAGS, struct.pack("=I", flags))
    if expected_fd:
        inner += attr(IflaXdp.EXPECTED_FD, struct.pack("=i", expected_fd))
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, ifindex, 0, 0) + attr(Ifla.XDP | NLA_F_NESTED, inner)
    _ask(Msg.RTM_SETLINK, Flag.ACK, body)


# --- tc: clsact and cls_bpf -----------------------------------------------------------


class TcFilter(NamedTuple):
    """A cls_bpf filter: where it is (ifindex, parent, handle, priority) and its program."""

    ifindex: int
    parent: int
    handle: int
    priority: int
    prog_id: int
    name: str


def _tcmsg(ifindex: int, handle: int, parent: int, info: int) -> bytes:
    return _TCMSG.pack(socket.AF_UNSPEC, ifindex, handle, parent, info)


def clsact_ensure(ifindex: int) -> bool:
    """Add the clsact qdisc to an interface; False if it was there already."""
    body = _tcmsg(ifindex, TC_H_CLSACT_HANDLE, TC_H_CLSACT, 0) + attr(Tca.KIND, b"clsact\0")
    try:
        _ask(Msg.RTM_NEWQDISC, Flag.ACK | Flag.CREATE | Flag.EXCL, body)
    except FileExistsError:
        return False
    return True


def _info(priority: int) -> int:
    """tcm_info of a filter: its priority and protocol (all, in network order)."""
    return (priority << 16) | socket.htons(ETH_P_ALL)


def tc_filter_add(ifindex: int, parent: int, prog_fd: int, name: str, priority: int = 0, handle: int = 0) -> None:
    """Add a direct-action cls_bpf filter running ``prog_fd`` (priority 0: the kernel picks one)."""
    options = (
        attr(TcaBpf.FD, struct.pack("=I", prog_fd))
        + attr(TcaBpf.NAME, name.encode() + b"\0")
        + attr(TcaBpf.FLAGS, struct.pack("=I", TCA_BPF_FLAG_ACT_DIRECT))
    )
    body = (
        _tcmsg(ifindex, handle, parent, _info(priority))
        + attr(Tca.KIND, b"bpf\0")
        + attr(Tca.OPTIONS | NLA_F_NESTED, options)
    )
    _ask(Msg.RTM_NEWTFILTER, Flag.ACK | Flag.CREATE | Flag.EXCL, body)


def tc_filters(ifindex: int, parent: int) -> list[TcFilter]:
    """The cls_bpf filters at one hook of an interface (none if it has no clsact)."""
    try:
        replies = _ask(Msg.RTM_GETTFILTER, Flag.DUMP, _tcmsg(ifindex, 0, parent, 0))
    except OSError:
        return []
    out = []
    for _, payload in replies:
        _, index, handle, got_parent, info = _TCMSG.unpack_from(payload)
        top = attrs(payload[_TCMSG.size :])
        if _cstr(top.get(Tca.KIND)) != "bpf" or not handle:
            continue
        options = attrs(top.get(Tca.OPTIONS, b""))
        prog_id = _u32(options.get(TcaBpf.ID))
        out.append(TcFilter(index, got_parent, handle, info >> 16, prog_id, _cstr(options.get(TcaBpf.NAME))))
    return out


def tc_filter_del(f: TcFilter) -> None:
    body = _tcmsg(f.ifindex, f.handle, f.parent, _info(f.priority)) + attr(Tca.KIND, b"bpf\0")
    _ask(Msg.RTM_DELTFILTER, Flag.ACK, body)
