"""Network targets: XDP, tcx and tc on an interface, cgroups, network namespaces."""

from __future__ import annotations

import errno
import fcntl
import os
import socket

from ..errors import BpftError
from ..kernel import fs, netlink, uapi
from ..kernel import syscall as sc
from ..kernel.links import LinkInfo, XdpFlags
from ..kernel.uapi import AttachType, LinkType
from .base import PROG_TYPE, Attached, Target, create_link, refused

CGROUP2_SUPER_MAGIC = 0x63677270
NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3): the CLONE_NEW* type of a namespace file
CLONE_NEWNET = 0x40000000


def _ifindex(name: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise BpftError(f"no such interface: '{name}'") from None


def _ifname(ifindex: int) -> str:
    try:
        return socket.if_indextoname(ifindex)
    except OSError:
        return f"ifindex {ifindex}"


class Xdp(Target):
    prog_types = (PROG_TYPE["xdp"],)
    MODES = {"skb": XdpFlags.SKB_MODE, "drv": XdpFlags.DRV_MODE, "hw": XdpFlags.HW_MODE}

    def __init__(self, ifname: str, mode: str | None):
        self.ifname, self.mode = ifname, mode
        self.ifindex = _ifindex(ifname)

    def describe(self) -> str:
        return f"xdp on {self.ifname}" + (f" ({self.mode} mode)" if self.mode else "")

    def attach(self, prog_fd, info):
        flags = self.MODES[self.mode] if self.mode else 0
        try:
            return Attached(sc.link_create(prog_fd, self.ifindex, AttachType.XDP, flags))
        except OSError as e:
            if self.mode == "hw" and e.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                raise BpftError(
                    f"the kernel refused {self.describe()}: {e.strerror} "
                    "(hw mode needs a device that offloads XDP programs)"
                ) from None
            raise refused(e, self.describe()) from None

    def owns(self, link):
        return link.type == LinkType.XDP and link.fields.get("ifindex") == self.ifindex

    def detach_legacy(self, prog_fd, prog_id):
        for iface in netlink.interfaces():
            if iface.ifindex != self.ifindex:
                continue
            for mode, attached in (("drv", iface.xdp_drv), ("skb", iface.xdp_skb), ("hw", iface.xdp_hw)):
                if attached == prog_id and (self.mode in (None, mode)):
                    netlink.xdp_set(self.ifindex, -1, self.MODES[mode])
                    return True
        return False


class Tcx(Target):
    prog_types = (PROG_TYPE["sched_cls"],)

    def __init__(self, ifname: str, direction: str):
        self.ifname, self.direction = ifname, direction
        self.ifindex = _ifindex(ifname)
        self.attach_type = AttachType.TCX_INGRESS if direction == "ingress" else AttachType.TCX_EGRESS

    def describe(self) -> str:
        return f"tcx {self.direction} on {self.ifname}"

    def attach(self, prog_fd, info):
        return Attached(create_link(prog_fd, self.ifindex, self.attach_type, self.describe()))

    def owns(self, link):
        return _is_link_at(link, LinkType.TCX, "ifindex", self.ifindex, self.attach_type)


class Tc(Target):
    """cls_bpf in direct-action mode on the clsact qdisc: tc has no link type (tcx is its link)."""

    prog_types = (PROG_TYPE["sched_cls"],)
    legacy = True

    def __init__(self, ifname: str, direction: str):
        self.ifname, self.direction = ifname, direction
        self.ifindex = _ifindex(ifname)
        self.parent = netlink.TC_PARENT_INGRESS if direction == "ingress" else netlink.TC_PARENT_EGRESS

    def describe(self) -> str:
        return f"tc {self.direction} on {self.ifname}"

    def attach(self, prog_fd, info):
        created = False
        try:
            created = netlink.clsact_ensure(self.ifindex)
            netlink.tc_filter_add(self.ifindex, self.parent, prog_fd, info.name.decode(errors="replace"))
        except OSError as e:
            raise refused(e, self.describe()) from None
        note = (
            f"tc has no BPF link type: attached through netlink (cls_bpf, direct action"
            f"{', on a new clsact qdisc' if created else ''}); it stays until `prog detach`"
        )
        return Attached(None, note)

    def detach_legacy(self, prog_fd, prog_id):
        found = [f for f in netlink.tc_filters(self.ifindex, self.parent) if f.prog_id == prog_id]
        for f in found:
            netlink.tc_filter_del(f)
        return bool(found)


# cgroup attach types and the program type each takes
CGROUP_PROG_TYPE = {
    "cgroup_inet_ingress": "cgroup_skb",
    "cgroup_inet_egress": "cgroup_skb",
    "cgroup_inet_sock_create": "cgroup_sock",
    "cgroup_inet_sock_release": "cgroup_sock",
    "cgroup_inet4_post_bind": "cgroup_sock",
    "cgroup_inet6_post_bind": "cgroup_sock",
    "cgroup_sock_ops": "sock_ops",
    "cgroup_device": "cgroup_device",
    "cgroup_sysctl": "cgroup_sysctl",
    "cgroup_getsockopt": "cgroup_sockopt",
    "cgroup_setsockopt": "cgroup_sockopt",
}
for _name in uapi.ATTACH_TYPE_NAMES:
    if _name.startswith("cgroup_") and _name not in CGROUP_PROG_TYPE:
        CGROUP_PROG_TYPE[_name] = "cgroup_sock_addr"  # bind, connect, sendmsg, recvmsg, get*name


def _open(path: str, what: str, directory: bool = False) -> int:
    try:
        return os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    except OSError:
        raise BpftError(f"no such {what}: '{path}'") from None


def _link_through(prog_fd: int, target: Cgroup | Netns, what: str, directory: bool) -> Attached:
    """A link on the object at ``target.path`` (a cgroup directory, a network namespace)."""
    fd = _open(target.path, what, directory)
    try:
        return Attached(create_link(prog_fd, fd, target.attach_type, target.describe()))
    finally:
        os.close(fd)


def _is_link_at(link: LinkInfo, link_type: int, key: str, value: int, attach_type: int) -> bool:
    return link.type == link_type and link.fields.get(key) == value and link.fields.get("attach_type") == attach_type


class Cgroup(Target):
    def __init__(self, attach_name: str, path: str):
        self.attach_name, self.path = attach_name, path
        self.attach_type = uapi.ATTACH_TYPE[attach_name]
        self.prog_types = (PROG_TYPE[CGROUP_PROG_TYPE[attach_name]],)
        if fs.fs_magic(path) != CGROUP2_SUPER_MAGIC:
            if not os.path.isdir(path):
                raise BpftError(f"no such cgroup: '{path}'")
            raise BpftError(f"'{path}' is not a cgroup v2 directory")
        self.cgroup_id = os.stat(path).st_ino

    def describe(self) -> str:
        return f"{self.attach_name} on cgroup {self.path}"

    def attach(self, prog_fd, info):
        return _link_through(prog_fd, self, "cgroup", directory=True)

    def owns(self, link):
        return _is_link_at(link, LinkType.CGROUP, "cgroup_id", self.cgroup_id, self.attach_type)

    def detach_legacy(self, prog_fd, prog_id):
        fd = _open(self.path, "cgroup", directory=True)
        try:
            sc.prog_detach(prog_fd, fd, self.attach_type)
        except OSError:
            return False
        finally:
            os.close(fd)
        return True


class Netns(Target):
    def __init__(self, attach_name: str, path: str):
        self.attach_name, self.path = attach_name, path
        self.attach_type = AttachType.SK_LOOKUP if attach_name == "sk_lookup" else AttachType.FLOW_DISSECTOR
        self.prog_types = (PROG_TYPE[attach_name],)
        fd = _open(path, "network namespace")
        try:
            self.netns_ino = os.fstat(fd).st_ino
            is_netns = fcntl.ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET
        except OSError:
            is_netns = False
        finally:
            os.close(fd)
        if not is_netns:
            raise BpftError(f"'{path}' is not a network namespace (a /run/netns/NAME or /proc/PID/ns/net file)")

    def describe(self) -> str:
        return f"{self.attach_name} in network namespace {self.path}"

    def attach(self, prog_fd, info):
        return _link_through(prog_fd, self, "network namespace", directory=False)

    def owns(self, link):
        return _is_link_at(link, LinkType.NETNS, "netns_ino", self.netns_ino, self.attach_type)
