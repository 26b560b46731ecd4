"""Attach targets: where a program can be attached, parsed from words, attached, found, detached.

One class per kind of target. Each knows the program types it takes, how to
attach (a BPF link wherever the kernel has a link type; tc's cls_bpf has none
and goes through netlink, which :attr:`Target.legacy` says), and which links
(or legacy attachments) are its own, for ``detach``. The grammar::

    TARGET := { xdp dev IFACE [{ skb | drv | hw }] | tcx_ingress dev IFACE | tcx_egress dev IFACE
              | tc_ingress dev IFACE | tc_egress dev IFACE | cgroup_* cgroup PATH
              | sk_lookup netns PATH | flow_dissector netns PATH
              | kprobe FUNC[+OFF] | kretprobe FUNC | uprobe BINARY:SYMBOL[+OFF] | uretprobe BINARY:SYMBOL
              | tracepoint CATEGORY:NAME | raw_tp NAME | tracing | lsm | iter }

Used by bpft-attach (``prog attach|detach``) and bpft-load (``loadall ... autoattach``).
"""

from __future__ import annotations

import errno
import os
import socket
from typing import NamedTuple

from .errors import BpftError
from .grammar import Args
from .kernel import fs, netlink, probes, uapi
from .kernel import info as kinfo
from .kernel import syscall as sc
from .kernel.links import AttachType, LinkInfo, LinkType, PerfEventType, XdpFlags

CGROUP2_SUPER_MAGIC = 0x63677270
P = uapi.PROG_TYPE


class Attached(NamedTuple):
    """What an attach made: a link fd (None for a legacy attachment) and a note for the user."""

    link_fd: int | None
    note: str = ""


class Target:
    """A place to attach programs. Subclasses set ``prog_types`` and implement the rest."""

    prog_types: tuple[int, ...] = ()
    legacy = False  # attached without a link: it stays until detached, nothing to pin or hold

    def describe(self) -> str:
        raise NotImplementedError

    def check_program(self, info: kinfo.ProgInfoRec) -> None:
        """Refuse a program of the wrong type before anything is attached."""
        if info.type in self.prog_types:
            return
        have = uapi.prog_type_name(info.type) or f"type {info.type}"
        want = " or ".join(uapi.prog_type_name(t) or str(t) for t in self.prog_types)
        raise BpftError(f"{self.describe()} takes a {want} program; program {info.id} is {have}")

    def attach(self, prog_fd: int, info: kinfo.ProgInfoRec) -> Attached:
        raise NotImplementedError

    def owns(self, link: LinkInfo) -> bool:
        """Whether ``link`` attaches a program here."""
        return False

    def detach_legacy(self, prog_fd: int, prog_id: int) -> bool:
        """Undo legacy attachments of the program here; whether there were any."""
        return False


def _create_link(prog_fd: int, target_fd: int, attach_type: int, what: str, flags: int = 0) -> int:
    try:
        return sc.link_create(prog_fd, target_fd, attach_type, flags)
    except OSError as e:
        raise _refused(e, what) from None


def _refused(e: OSError, what: str) -> BpftError:
    if e.errno == errno.EEXIST or e.errno == errno.EBUSY:
        return BpftError(f"{what}: something is attached there already ({e.strerror})")
    if e.errno == errno.EINVAL:
        return BpftError(f"the kernel refused {what}: {e.strerror} (a kernel without this link type says so too)")
    return BpftError(f"the kernel refused {what}: {e.strerror}")


# --- network targets ---------------------------------------------------------------


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
    prog_types = (P["xdp"],)
    MODES = {"skb": XdpFlags.SKB_MODE, "drv": XdpFlags.DRV_MODE, "hw": XdpFlags.HW_MODE}

    def __init__(self, ifname: str, mode: str | None):
        self.ifname, self.mode = ifname, mode
        self.ifindex = _ifindex(ifname)

    def describe(self) -> str:
        return f"xdp on {self.ifname}" + (f" ({self.mode} mode)" if self.mode else "")

    def attach(self, prog_fd, info):
        flags = self.MODES[self.mode] if self.mode else 0
        return Attached(_create_link(prog_fd, self.ifindex, AttachType.XDP, self.describe(), flags))

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
    prog_types = (P["sched_cls"],)

    def __init__(self, ifname: str, direction: str):
        self.ifname, self.direction = ifname, direction
        self.ifindex = _ifindex(ifname)
        self.attach_type = AttachType.TCX_INGRESS if direction == "ingress" else AttachType.TCX_EGRESS

    def describe(self) -> str:
        return f"tcx {self.direction} on {self.ifname}"

    def attach(self, prog_fd, info):
        return Attached(_create_link(prog_fd, self.ifindex, self.attach_type, self.describe()))

    def owns(self, link):
        return (
            link.type == LinkType.TCX
            and link.fields.get("ifindex") == self.ifindex
            and link.fields.get("attach_type") == self.attach_type
        )


class Tc(Target):
    """cls_bpf in direct-action mode on the clsact qdisc: tc has no link type (tcx is its link)."""

    prog_types = (P["sched_cls"],)
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
            raise _refused(e, self.describe()) from None
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
_CGROUP_PROG_TYPE = {
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
    if _name.startswith("cgroup_") and _name not in _CGROUP_PROG_TYPE:
        _CGROUP_PROG_TYPE[_name] = "cgroup_sock_addr"  # bind, connect, sendmsg, recvmsg, get*name


def _open_dir(path: str, what: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        raise BpftError(f"no such {what}: '{path}'") from None


class Cgroup(Target):
    def __init__(self, attach_name: str, path: str):
        self.attach_name, self.path = attach_name, path
        self.attach_type = uapi.ATTACH_TYPE[attach_name]
        self.prog_types = (P[_CGROUP_PROG_TYPE[attach_name]],)
        if fs.fs_magic(path) != CGROUP2_SUPER_MAGIC:
            if not os.path.isdir(path):
                raise BpftError(f"no such cgroup: '{path}'")
            raise BpftError(f"'{path}' is not a cgroup v2 directory")
        self.cgroup_id = os.stat(path).st_ino

    def describe(self) -> str:
        return f"{self.attach_name} on cgroup {self.path}"

    def attach(self, prog_fd, info):
        fd = _open_dir(self.path, "cgroup")
        try:
            return Attached(_create_link(prog_fd, fd, self.attach_type, self.describe()))
        finally:
            os.close(fd)

    def owns(self, link):
        return (
            link.type == LinkType.CGROUP
            and link.fields.get("cgroup_id") == self.cgroup_id
            and link.fields.get("attach_type") == self.attach_type
        )

    def detach_legacy(self, prog_fd, prog_id):
        fd = _open_dir(self.path, "cgroup")
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
        self.prog_types = (P[attach_name],)
        try:
            self.netns_ino = os.stat(path).st_ino
        except OSError:
            raise BpftError(f"no such network namespace: '{path}'") from None

    def describe(self) -> str:
        return f"{self.attach_name} in network namespace {self.path}"

    def attach(self, prog_fd, info):
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            raise BpftError(f"no such network namespace: '{self.path}'") from None
        try:
            return Attached(_create_link(prog_fd, fd, self.attach_type, self.describe()))
        finally:
            os.close(fd)

    def owns(self, link):
        return (
            link.type == LinkType.NETNS
            and link.fields.get("netns_ino") == self.netns_ino
            and link.fields.get("attach_type") == self.attach_type
        )


# --- tracing targets ---------------------------------------------------------------------


def _perf_link(prog_fd: int, event_fd: int, what: str) -> int:
    """A perf-event link (kernel 5.15+); an older kernel's legacy attachment could not be pinned."""
    try:
        return sc.link_create(prog_fd, event_fd, AttachType.PERF_EVENT)
    except OSError as e:
        if e.errno == errno.EINVAL:
            raise BpftError(
                f"the kernel refused a perf-event link for {what}: {e.strerror} "
                "(kernels before 5.15 have none; bpft does not fall back to an attachment it cannot pin)"
            ) from None
        raise _refused(e, what) from None
    finally:
        os.close(event_fd)


def _perf_event_is(link: LinkInfo, event_type: int, **want) -> bool:
    """Whether a perf-event link is on this event. Kernels before 6.6 do not say what a
    perf-event link's event is (its event type reads UNSPEC): then any of the program's
    perf-event links is taken as this one."""
    if link.type != LinkType.PERF_EVENT:
        return False
    got = link.fields.get("event_type")
    if got == PerfEventType.UNSPEC:
        return True
    return got == event_type and all(link.fields.get(key) == value for key, value in want.items())


def _probe_link(prog_fd: int, what: str, open_event, *where) -> Attached:
    """A perf-event link on the event ``open_event(*where)`` opens."""
    try:
        event_fd = open_event(*where)
    except probes.ProbeError as e:
        raise BpftError(e.message) from None
    return Attached(_perf_link(prog_fd, event_fd, what))


def _split_offset(text: str) -> tuple[str, int]:
    name, plus, off = text.partition("+")
    if not plus:
        return name, 0
    try:
        return name, int(off, 0)
    except ValueError:
        raise BpftError(f"can't parse '{off}' as an offset in '{text}'") from None


class Kprobe(Target):
    prog_types = (P["kprobe"],)

    def __init__(self, spec: str, retprobe: bool):
        self.spec, self.retprobe = spec, retprobe
        self.func, self.offset = _split_offset(spec)
        if not self.func:
            raise BpftError(f"no function in '{spec}'")

    @property
    def kind(self) -> str:
        return "kretprobe" if self.retprobe else "kprobe"

    def describe(self) -> str:
        return f"{self.kind} {self.spec}"

    def attach(self, prog_fd, info):
        return _probe_link(prog_fd, self.describe(), probes.open_kprobe, self.func, self.offset, self.retprobe)

    def owns(self, link):
        want = PerfEventType.KRETPROBE if self.retprobe else PerfEventType.KPROBE
        return _perf_event_is(link, want, func_name=self.func)


class Uprobe(Target):
    prog_types = (P["kprobe"],)

    def __init__(self, spec: str, retprobe: bool):
        self.spec, self.retprobe = spec, retprobe
        path, colon, symbol = spec.rpartition(":")
        if not colon or not path:
            raise BpftError(f"expected BINARY:SYMBOL[+OFFSET], got: '{spec}'")
        self.path = os.path.realpath(path)
        symbol, extra = _split_offset(symbol)
        try:
            self.offset = (probes.symbol_offset(self.path, symbol) if symbol else 0) + extra
        except probes.ProbeError as e:
            raise BpftError(e.message) from None

    def describe(self) -> str:
        return f"{'uretprobe' if self.retprobe else 'uprobe'} {self.spec}"

    def attach(self, prog_fd, info):
        return _probe_link(prog_fd, self.describe(), probes.open_uprobe, self.path, self.offset, self.retprobe)

    def owns(self, link):
        want = PerfEventType.URETPROBE if self.retprobe else PerfEventType.UPROBE
        return _perf_event_is(link, want, file_name=self.path, offset=self.offset)


class Tracepoint(Target):
    prog_types = (P["tracepoint"],)

    def __init__(self, spec: str, nomount: bool = False):
        category, colon, name = spec.partition(":")
        if not colon:
            category, _, name = spec.partition("/")
        self.category, self.name, self.nomount = category, name, nomount

    def describe(self) -> str:
        return f"tracepoint {self.category}:{self.name}"

    def attach(self, prog_fd, info):
        from .kernel.tracefs import TracefsError, mount_point

        try:
            events = f"{mount_point(self.nomount)}/events"
        except TracefsError as e:
            raise BpftError(str(e)) from None
        return _probe_link(prog_fd, self.describe(), probes.open_tracepoint, events, self.category, self.name)

    def owns(self, link):
        return _perf_event_is(link, PerfEventType.TRACEPOINT, tp_name=self.name)


class RawTracepoint(Target):
    prog_types = (P["raw_tracepoint"], P["raw_tracepoint_writable"])

    def __init__(self, name: str):
        self.name = name

    def describe(self) -> str:
        return f"raw_tp {self.name}"

    def attach(self, prog_fd, info):
        try:
            return Attached(sc.raw_tracepoint_open(self.name, prog_fd))
        except OSError as e:
            if e.errno == errno.ENOENT:
                raise BpftError(f"no such raw tracepoint: '{self.name}'") from None
            raise _refused(e, self.describe()) from None

    def owns(self, link):
        return link.type == LinkType.RAW_TRACEPOINT and link.fields.get("tp_name") == self.name


def btf_target_name(info: kinfo.ProgInfoRec) -> str | None:
    """The kernel function, tracepoint or iterator a program's ``attach_btf_id`` names."""
    if not info.attach_btf_id:
        return None
    from .btf import BTFError, load_kernel_btf

    try:
        btf = load_kernel_btf(info.attach_btf_obj_id) if info.attach_btf_obj_id else _vmlinux()
        return btf.name(btf.type(info.attach_btf_id).name_off)
    except (OSError, BTFError, IndexError, ValueError):
        return None


def _vmlinux():
    from .btf import vmlinux

    return vmlinux()


class BtfTarget(Target):
    """``tracing``, ``lsm``, ``iter``: the place is the program's own ``attach_btf_id``."""

    KINDS = {"tracing": (P["tracing"], P["ext"]), "lsm": (P["lsm"],), "iter": (P["tracing"],)}

    def __init__(self, kind: str):
        self.kind = kind
        self.prog_types = self.KINDS[kind]
        self.btf_name: str | None = None

    def describe(self) -> str:
        return self.kind + (f" {self.btf_name}" if self.btf_name else "")

    def check_program(self, info):
        super().check_program(info)
        self.btf_name = btf_target_name(info)
        if not info.attach_btf_id:
            raise BpftError(f"program {info.id} has no attach BTF target: {self.kind} needs one")
        is_iter = (self.btf_name or "").startswith("bpf_iter_")
        if is_iter != (self.kind == "iter"):
            raise BpftError(f"program {info.id} attaches to {self.btf_name}: use '{'iter' if is_iter else 'tracing'}'")

    def attach(self, prog_fd, info):
        try:
            if self.kind == "iter":
                return Attached(sc.link_create(prog_fd, 0, AttachType.TRACE_ITER))
            return Attached(sc.raw_tracepoint_open(None, prog_fd))
        except OSError as e:
            raise _refused(e, self.describe()) from None

    def owns(self, link):
        if self.kind == "iter":
            return link.type == LinkType.ITER
        return link.type in (LinkType.TRACING, LinkType.RAW_TRACEPOINT)


# --- the grammar ----------------------------------------------------------------------------

_DEV_TARGETS = {"tcx_ingress", "tcx_egress", "tc_ingress", "tc_egress"}
_ONE_WORD = {"kprobe", "kretprobe", "uprobe", "uretprobe", "tracepoint", "raw_tp"}


def parse_target(args: Args, nomount: bool = False) -> Target | None:
    """The TARGET at the cursor, consuming its words; None (nothing consumed) when the
    words are not one, so the caller can read them as bpftool's ATTACH_TYPE [MAP].

    A keyword takes its words only when they are all there (``xdp dev IFACE``),
    so bpftool's words keep bpftool's errors.
    """
    word = args.current
    nxt = args.peek(1)
    if word is None:
        return None
    if word == "xdp" and nxt == "dev" and args.peek(2) is not None:
        args.next(), args.next()
        ifname = args.next()
        mode = args.current if args.current in Xdp.MODES else None
        if mode:
            args.next()
        return Xdp(ifname, mode)
    if word in _DEV_TARGETS and nxt == "dev" and args.peek(2) is not None:
        args.next(), args.next()
        ifname = args.next()
        cls = Tcx if word.startswith("tcx") else Tc
        return cls(ifname, word.split("_", 1)[1])
    if word in _CGROUP_PROG_TYPE and nxt == "cgroup" and args.peek(2) is not None:
        args.next(), args.next()
        return Cgroup(word, args.next())
    if word in ("sk_lookup", "flow_dissector") and nxt == "netns" and args.peek(2) is not None:
        args.next(), args.next()
        return Netns(word, args.next())
    if word in _ONE_WORD and nxt is not None:
        args.next()
        spec = args.next()
        if word in ("kprobe", "kretprobe"):
            return Kprobe(spec, word == "kretprobe")
        if word in ("uprobe", "uretprobe"):
            return Uprobe(spec, word == "uretprobe")
        if word == "tracepoint":
            return Tracepoint(spec, nomount)
        return RawTracepoint(spec)
    if word in BtfTarget.KINDS:
        args.next()
        return BtfTarget(word)
    return None


def is_target_word(word: str | None) -> bool:
    """Whether ``word`` starts a TARGET (for messages about an incomplete one)."""
    return word is not None and (
        word == "xdp" or word in _DEV_TARGETS or word in _CGROUP_PROG_TYPE or word in _ONE_WORD or word == "sk_lookup"
    )
