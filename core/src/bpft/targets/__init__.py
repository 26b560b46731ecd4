"""Attach targets: where a program can be attached, parsed from words, attached, found, detached.

One class per kind of target. Each knows the program types it takes, how to
attach (a BPF link wherever the kernel has a link type; tc's cls_bpf has none
and goes through netlink, which :attr:`Target.legacy` says), and which links
(or legacy attachments) are its own, for ``detach``. The grammar::

    TARGET := { xdp dev IFACE [{ skb | drv | hw }] | tcx_ingress dev IFACE | tcx_egress dev IFACE
              | tc_ingress dev IFACE | tc_egress dev IFACE | cgroup_* cgroup PATH
              | sk_lookup netns PATH | flow_dissector netns PATH
              | kprobe FUNC[+OFF] | kretprobe FUNC | uprobe BINARY:SYMBOL[+OFF] | uretprobe BINARY:SYMBOL
              | tracepoint CATEGORY:NAME | raw_tp NAME | tracing | lsm | iter
              | perf_event EVENT [{ freq HZ | period N }] [cpu CPU] [pid PID] }

(``perf_event``'s words and its one link per CPU: :mod:`bpft.targets.perf_event`.)

Used by bpft-attach (``prog attach|detach``) and bpft-load (``loadall ... autoattach``).
"""

from __future__ import annotations

from ..grammar import Args
from .base import Attached, Target
from .network import CGROUP_PROG_TYPE, Cgroup, Netns, Tc, Tcx, Xdp
from .perf_event import PerfEvent
from .tracing import BtfTarget, Kprobe, RawTracepoint, Tracepoint, Uprobe, btf_target_name

__all__ = [
    "Attached",
    "BtfTarget",
    "Cgroup",
    "Kprobe",
    "Netns",
    "PerfEvent",
    "RawTracepoint",
    "Target",
    "Tc",
    "Tcx",
    "Tracepoint",
    "Uprobe",
    "Xdp",
    "btf_target_name",
    "parse_target",
]

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
    if word in CGROUP_PROG_TYPE and nxt == "cgroup" and args.peek(2) is not None:
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
    if word == "perf_event" and nxt is not None:
        args.next()
        return PerfEvent.parse(args)
    if word in BtfTarget.KINDS:
        args.next()
        return BtfTarget(word)
    return None
