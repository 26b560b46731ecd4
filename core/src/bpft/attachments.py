"""Where programs are attached: every place the kernel reports, named for a person.

Sources, each for what the others do not see:

* links (``BPF_LINK_GET_NEXT_ID`` and each link's info), their targets decoded;
* perf events that processes hold with a program on them (``BPF_TASK_FD_QUERY``
  over ``/proc/*/fd``): attachments made without a link;
* cgroups (``BPF_PROG_QUERY`` over every cgroup2 directory), network namespaces
  (ours), tcx hooks and sockmaps/sockhashes (``BPF_PROG_QUERY``), for programs
  attached there without a link;
* XDP and tc cls_bpf (netlink, in our network namespace);
* struct_ops maps (each map's value holds the ids of its programs).

:func:`attachments` returns :class:`Place` lists by program id.
"""

from __future__ import annotations

import os
import socket
import struct
from collections import defaultdict
from typing import NamedTuple

from .kernel import info as kinfo
from .kernel import links, netlink, query, uapi
from .kernel import syscall as sc
from .kernel.links import LinkInfo, PerfEventType
from .kernel.uapi import AttachType, LinkType


class Place(NamedTuple):
    """One attachment: ``target`` names the place, ``link_id`` the link (0 if none),
    ``via`` how it was made or found when there is no link (``netlink``, ``prog_attach``,
    ``perf_event fd 5 of comm(123)``, ``struct_ops map 7``)."""

    target: str
    link_id: int = 0
    via: str = ""

    def as_json(self) -> dict:
        j: dict = {"target": self.target}
        if self.link_id:
            j["link_id"] = self.link_id
        if self.via:
            j["via"] = self.via
        return j

    def text(self) -> str:
        return f"link {self.link_id}  {self.target}" if self.link_id else f"{self.target}  ({self.via})"


def _attach_name(value: int) -> str:
    return uapi.attach_type_name(value) or _NEWER_ATTACH_NAMES.get(value, f"attach_type {value}")


_NEWER_ATTACH_NAMES = {44: "struct_ops", 45: "netfilter", 46: "tcx_ingress", 47: "tcx_egress"}


def ifname(ifindex: int) -> str:
    try:
        return socket.if_indextoname(ifindex)
    except OSError:
        return f"ifindex {ifindex}"


class CgroupPaths(dict):
    """cgroup id -> path, over every cgroup2 mount (walked once, when first asked)."""

    def __init__(self) -> None:
        super().__init__()
        self.walked = False

    def dirs(self) -> list[str]:
        self._walk()
        return list(self.values())

    def name(self, cgroup_id: int) -> str:
        self._walk()
        return self.get(cgroup_id, f"cgroup id {cgroup_id}")

    def _walk(self) -> None:
        if self.walked:
            return
        self.walked = True
        for mnt in cgroup2_mounts():
            for top, _dirs, _ in os.walk(mnt):
                try:
                    self[os.stat(top).st_ino] = top
                except OSError:
                    continue


def cgroup2_mounts() -> list[str]:
    out = []
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] == "cgroup2" and parts[1] not in out:
                    out.append(parts[1])
    except OSError:
        pass
    return out


def _netns_name(ino: int) -> str:
    try:
        if os.stat("/proc/self/ns/net").st_ino == ino:
            return "netns (ours)"
    except OSError:
        pass
    try:
        for name in sorted(os.listdir("/run/netns")):
            if os.stat(f"/run/netns/{name}").st_ino == ino:
                return f"netns {name}"
    except OSError:
        pass
    return f"netns_ino {ino}"


def _btf_func(obj_id: int, type_id: int) -> str:
    from .btf import BTFError, load_kernel_btf

    try:
        btf = load_kernel_btf(obj_id)
        return btf.name(btf.type(type_id).name_off)
    except (OSError, BTFError, IndexError, ValueError):
        return f"btf {obj_id} type {type_id}"


def _probe_text(kind: str, name: str, offset: int) -> str:
    return f"{kind} {name}" + (f"+{offset:#x}" if offset else "")


def describe_link(link: LinkInfo, cgroups: CgroupPaths | None = None) -> str:
    """A link's target, for a person: ``xdp veth0``, ``cgroup_inet_egress /sys/fs/cgroup/x``..."""
    f, kind = link.fields, link.type
    if kind == LinkType.RAW_TRACEPOINT:
        return f"raw_tp {f['tp_name']}"
    if kind == LinkType.TRACING:
        if not f["target_btf_id"]:  # older kernels do not report it
            return f"{_attach_name(f['attach_type'])} (this kernel does not say which function)"
        return f"{_attach_name(f['attach_type'])} {_btf_func(f['target_obj_id'], f['target_btf_id'])}"
    if kind == LinkType.CGROUP:
        path = (cgroups or CgroupPaths()).name(f["cgroup_id"])
        return f"{_attach_name(f['attach_type'])} cgroup {path}"
    if kind == LinkType.ITER:
        return f"iter {f['target_name']}"
    if kind == LinkType.NETNS:
        return f"{_attach_name(f['attach_type'])} {_netns_name(f['netns_ino'])}"
    if kind == LinkType.XDP:
        return f"xdp dev {ifname(f['ifindex'])}"
    if kind in (LinkType.TCX, LinkType.NETKIT):
        prefix = "tcx" if kind == LinkType.TCX else "netkit"
        direction = {AttachType.TCX_INGRESS: "ingress", AttachType.TCX_EGRESS: "egress"}.get(f["attach_type"])
        return f"{prefix}_{direction or f['attach_type']} dev {ifname(f['ifindex'])}"
    if kind == LinkType.STRUCT_OPS:
        return f"struct_ops map {f['map_id']}"
    if kind == LinkType.SOCKMAP:
        return f"{_attach_name(f['attach_type'])} map {f['map_id']}"
    if kind == LinkType.PERF_EVENT:
        return _perf_event_text(f)
    return f"link type {kind}"


_PERF_KIND = {
    PerfEventType.KPROBE: "kprobe",
    PerfEventType.KRETPROBE: "kretprobe",
    PerfEventType.UPROBE: "uprobe",
    PerfEventType.URETPROBE: "uretprobe",
}


def _perf_event_text(f: dict) -> str:
    event_type = f.get("event_type")
    if event_type in (PerfEventType.KPROBE, PerfEventType.KRETPROBE) and "func_name" in f:
        return _probe_text(_PERF_KIND[event_type], f["func_name"], f.get("offset", 0))
    if event_type in (PerfEventType.UPROBE, PerfEventType.URETPROBE) and "file_name" in f:
        return _probe_text(_PERF_KIND[event_type], f["file_name"], f.get("offset", 0))
    if event_type == PerfEventType.TRACEPOINT and "tp_name" in f:
        return f"tracepoint {f['tp_name']}"
    if event_type == PerfEventType.EVENT:
        from .kernel.perf import event_name

        name = event_name(f["type"], f["config"])
        return f"perf_event {name}" if name else f"perf_event type {f['type']} config {f['config']}"
    return "perf_event (this kernel does not say which event: before 6.6)"


_TASK_FD_KIND: dict[int, str] = {  # keyed by the kernel's fd_type, an int
    query.TaskFdType.RAW_TRACEPOINT: "raw_tp",
    query.TaskFdType.TRACEPOINT: "tracepoint",
    query.TaskFdType.KPROBE: "kprobe",
    query.TaskFdType.KRETPROBE: "kretprobe",
    query.TaskFdType.UPROBE: "uprobe",
    query.TaskFdType.URETPROBE: "uretprobe",
}


def _task_fd_text(q: query.TaskFd) -> str:
    kind = _TASK_FD_KIND.get(q.fd_type, f"fd_type {q.fd_type}")
    if q.fd_type in (query.TaskFdType.RAW_TRACEPOINT, query.TaskFdType.TRACEPOINT):
        return f"{kind} {q.name}"
    if q.name:
        return _probe_text(kind, q.name, q.probe_offset)
    return f"{kind} {q.probe_addr:#x}"


def _perf_event_fds():
    """(pid, fd, comm) of every perf event fd in every process."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        comm = None
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:[perf_event]":
                    continue
            except OSError:
                continue
            if comm is None:
                try:
                    with open(f"/proc/{pid}/comm") as f:
                        comm = f.read().strip()
                except OSError:
                    comm = "?"
            yield pid, int(fd), comm


_CGROUP_TYPES = [i for i, name in enumerate(uapi.ATTACH_TYPE_NAMES) if name.startswith("cgroup_")]
_SOCKMAP_TYPES = (4, 5, 7, 38)  # sk_skb_stream_parser, sk_skb_stream_verdict, sk_msg_verdict, sk_skb_verdict


class _Collector:
    def __init__(self, prog_ids: set[int] | None):
        self.want = prog_ids
        self.places: dict[int, list[Place]] = defaultdict(list)
        self.link_ids: set[int] = set()
        self.cgroups = CgroupPaths()

    def add(self, prog_id: int, place: Place) -> None:
        if self.want is not None and prog_id not in self.want:
            return
        if place.link_id == 0 and any(p.target == place.target for p in self.places[prog_id]):
            return  # the same place seen through a link (or twice through processes)
        self.places[prog_id].append(place)

    def from_links(self) -> None:
        for link in links.all_links():
            self.link_ids.add(link.id)
            if link.prog_id:
                self.add(link.prog_id, Place(describe_link(link, self.cgroups), link.id))

    def from_query(self, target: int, attach_type: int, text: str, via: str) -> None:
        try:
            got = query.prog_query(target, attach_type)
        except OSError:
            return
        for prog_id, link_id in zip(got.prog_ids, got.link_ids, strict=False):
            if link_id and link_id in self.link_ids:
                continue
            self.add(prog_id, Place(text, link_id, "" if link_id else via))

    def from_cgroups(self) -> None:
        for path in self.cgroups.dirs():
            try:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                continue
            try:
                for attach_type in _CGROUP_TYPES:
                    self.from_query(fd, attach_type, f"{_attach_name(attach_type)} cgroup {path}", "prog_attach")
            finally:
                os.close(fd)

    def from_netns(self) -> None:
        try:
            fd = os.open("/proc/self/ns/net", os.O_RDONLY)
        except OSError:
            return
        try:
            for attach_type in (AttachType.FLOW_DISSECTOR, AttachType.SK_LOOKUP):
                text = f"{_attach_name(attach_type)} netns (ours)"
                self.from_query(fd, attach_type, text, "prog_attach")
        finally:
            os.close(fd)

    def from_netlink(self) -> None:
        try:
            interfaces = netlink.interfaces()
        except OSError:
            return
        for iface in interfaces:
            for mode, prog_id in (("drv", iface.xdp_drv), ("skb", iface.xdp_skb), ("hw", iface.xdp_hw)):
                if prog_id:
                    self.add(prog_id, Place(f"xdp dev {iface.name}", 0, f"netlink, {mode} mode"))
            for direction, parent in (("ingress", netlink.TC_PARENT_INGRESS), ("egress", netlink.TC_PARENT_EGRESS)):
                for f in netlink.tc_filters(iface.ifindex, parent):
                    via = f"netlink, cls_bpf handle {f.handle:#x} prio {f.priority}" + (f" {f.name}" if f.name else "")
                    self.add(f.prog_id, Place(f"tc_{direction} dev {iface.name}", 0, via))
                tcx_type = AttachType.TCX_INGRESS if direction == "ingress" else AttachType.TCX_EGRESS
                self.from_query(iface.ifindex, tcx_type, f"tcx_{direction} dev {iface.name}", "prog_attach")

    def from_processes(self) -> None:
        for pid, fd, comm in _perf_event_fds():
            try:
                q = query.task_fd_query(pid, fd)
            except OSError:
                continue
            self.add(q.prog_id, Place(_task_fd_text(q), 0, f"perf_event fd {fd} of {comm}({pid})"))

    def from_maps(self) -> None:
        map_id = 0
        while True:
            next_id = sc.map_get_next_id(map_id)
            if next_id is None:
                return
            map_id = next_id
            try:
                fd = sc.map_get_fd_by_id(map_id)
            except OSError:
                continue
            try:
                info = kinfo.map_info(fd)
                if info.type in (uapi.MAP_TYPE["sockmap"], uapi.MAP_TYPE["sockhash"]):
                    for attach_type in _SOCKMAP_TYPES:
                        self.from_query(fd, attach_type, f"{_attach_name(attach_type)} map {map_id}", "prog_attach")
                elif info.type == uapi.MAP_TYPE["struct_ops"]:
                    self._struct_ops(fd, info, map_id)
            except OSError:
                pass
            finally:
                os.close(fd)

    def _struct_ops(self, fd: int, info: kinfo.MapInfo, map_id: int) -> None:
        """A struct_ops map's value keeps each member program's id in the member's slot."""
        from .btf import FUNC_PROTO, PTR, STRUCT, BTFError, vmlinux

        try:
            value = sc.map_lookup_elem(fd, b"\0\0\0\0", info.value_size)
            btf = vmlinux()
            wrapper = btf.type(info.btf_vmlinux_value_type_id)
        except (OSError, BTFError, IndexError):
            return
        for name_off, type_id, bit_off, _ in wrapper.members or ():
            if btf.name(name_off) != "data":
                continue
            ops = btf.type(btf.resolve(type_id))
            if ops.kind != STRUCT:
                return
            for m_name, m_type, m_bits, _ in ops.members:
                t = btf.type(btf.resolve(m_type))
                if t.kind != PTR or btf.type(btf.resolve(t.size_or_type)).kind != FUNC_PROTO:
                    continue
                pos = (bit_off + m_bits) // 8
                if pos + 8 <= len(value):
                    (prog_id,) = struct.unpack_from("<Q", value, pos)
                    if prog_id:
                        text = f"struct_ops {btf.name(ops.name_off)}.{btf.name(m_name)}"
                        self.add(prog_id, Place(text, 0, f"struct_ops map {map_id}"))


def attachments(prog_ids: set[int] | None = None) -> dict[int, list[Place]]:
    """Every place each program (all, or ``prog_ids``) is attached, by program id."""
    c = _Collector(prog_ids)
    c.from_links()
    c.from_processes()
    c.from_cgroups()
    c.from_netns()
    c.from_netlink()
    c.from_maps()
    return c.places
