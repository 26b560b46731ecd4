"""libbpf 1.1's table of ELF section names: program type, expected attach type, flags.

Matching is libbpf's ``sec_def_matches``: ``"x+"`` matches ``x`` or ``x/...``,
``"x/"`` matches by prefix, anything else exactly; the first match wins.
"""

from __future__ import annotations

from bpft.kernel.uapi import AttachType, ProgType
from bpft.records import NamedTuple  # typing's, without importing typing (start-up)

NONE, EXP_ATTACH_OPT, ATTACHABLE, ATTACH_BTF, SLEEPABLE, XDP_FRAGS = 0, 1, 2, 4, 8, 16
ATTACHABLE_OPT = ATTACHABLE | EXP_ATTACH_OPT


class SecDef(NamedTuple):
    sec: str
    prog_type: ProgType
    attach_type: AttachType | int  # 0 (cgroup_inet_ingress) when the section implies none
    flags: int


def _d(sec: str, prog_type: str, attach_type: str | None, flags: int) -> SecDef:
    return SecDef(sec, ProgType[prog_type.upper()], AttachType[attach_type.upper()] if attach_type else 0, flags)


SECTION_DEFS: tuple[SecDef, ...] = (
    _d("socket", "socket_filter", None, NONE),
    _d("sk_reuseport/migrate", "sk_reuseport", "sk_reuseport_select_or_migrate", ATTACHABLE),
    _d("sk_reuseport", "sk_reuseport", "sk_reuseport_select", ATTACHABLE),
    _d("kprobe+", "kprobe", None, NONE),
    _d("uprobe+", "kprobe", None, NONE),
    _d("uprobe.s+", "kprobe", None, SLEEPABLE),
    _d("kretprobe+", "kprobe", None, NONE),
    _d("uretprobe+", "kprobe", None, NONE),
    _d("uretprobe.s+", "kprobe", None, SLEEPABLE),
    _d("kprobe.multi+", "kprobe", "trace_kprobe_multi", NONE),
    _d("kretprobe.multi+", "kprobe", "trace_kprobe_multi", NONE),
    _d("ksyscall+", "kprobe", None, NONE),
    _d("kretsyscall+", "kprobe", None, NONE),
    _d("usdt+", "kprobe", None, NONE),
    _d("tc", "sched_cls", None, NONE),
    _d("classifier", "sched_cls", None, NONE),
    _d("action", "sched_act", None, NONE),
    _d("tracepoint+", "tracepoint", None, NONE),
    _d("tp+", "tracepoint", None, NONE),
    _d("raw_tracepoint+", "raw_tracepoint", None, NONE),
    _d("raw_tp+", "raw_tracepoint", None, NONE),
    _d("raw_tracepoint.w+", "raw_tracepoint_writable", None, NONE),
    _d("raw_tp.w+", "raw_tracepoint_writable", None, NONE),
    _d("tp_btf+", "tracing", "trace_raw_tp", ATTACH_BTF),
    _d("fentry+", "tracing", "trace_fentry", ATTACH_BTF),
    _d("fmod_ret+", "tracing", "modify_return", ATTACH_BTF),
    _d("fexit+", "tracing", "trace_fexit", ATTACH_BTF),
    _d("fentry.s+", "tracing", "trace_fentry", ATTACH_BTF | SLEEPABLE),
    _d("fmod_ret.s+", "tracing", "modify_return", ATTACH_BTF | SLEEPABLE),
    _d("fexit.s+", "tracing", "trace_fexit", ATTACH_BTF | SLEEPABLE),
    _d("freplace+", "ext", None, ATTACH_BTF),
    _d("lsm+", "lsm", "lsm_mac", ATTACH_BTF),
    _d("lsm.s+", "lsm", "lsm_mac", ATTACH_BTF | SLEEPABLE),
    _d("lsm_cgroup+", "lsm", "lsm_cgroup", ATTACH_BTF),
    _d("iter+", "tracing", "trace_iter", ATTACH_BTF),
    _d("iter.s+", "tracing", "trace_iter", ATTACH_BTF | SLEEPABLE),
    _d("syscall", "syscall", None, SLEEPABLE),
    _d("xdp.frags/devmap", "xdp", "xdp_devmap", XDP_FRAGS),
    _d("xdp/devmap", "xdp", "xdp_devmap", ATTACHABLE),
    _d("xdp.frags/cpumap", "xdp", "xdp_cpumap", XDP_FRAGS),
    _d("xdp/cpumap", "xdp", "xdp_cpumap", ATTACHABLE),
    _d("xdp.frags", "xdp", "xdp", XDP_FRAGS),
    _d("xdp", "xdp", "xdp", ATTACHABLE_OPT),
    _d("perf_event", "perf_event", None, NONE),
    _d("lwt_in", "lwt_in", None, NONE),
    _d("lwt_out", "lwt_out", None, NONE),
    _d("lwt_xmit", "lwt_xmit", None, NONE),
    _d("lwt_seg6local", "lwt_seg6local", None, NONE),
    _d("sockops", "sock_ops", "cgroup_sock_ops", ATTACHABLE_OPT),
    _d("sk_skb/stream_parser", "sk_skb", "sk_skb_stream_parser", ATTACHABLE_OPT),
    _d("sk_skb/stream_verdict", "sk_skb", "sk_skb_stream_verdict", ATTACHABLE_OPT),
    _d("sk_skb", "sk_skb", None, NONE),
    _d("sk_msg", "sk_msg", "sk_msg_verdict", ATTACHABLE_OPT),
    _d("lirc_mode2", "lirc_mode2", "lirc_mode2", ATTACHABLE_OPT),
    _d("flow_dissector", "flow_dissector", "flow_dissector", ATTACHABLE_OPT),
    _d("cgroup_skb/ingress", "cgroup_skb", "cgroup_inet_ingress", ATTACHABLE_OPT),
    _d("cgroup_skb/egress", "cgroup_skb", "cgroup_inet_egress", ATTACHABLE_OPT),
    _d("cgroup/skb", "cgroup_skb", None, NONE),
    _d("cgroup/sock_create", "cgroup_sock", "cgroup_inet_sock_create", ATTACHABLE),
    _d("cgroup/sock_release", "cgroup_sock", "cgroup_inet_sock_release", ATTACHABLE),
    _d("cgroup/sock", "cgroup_sock", "cgroup_inet_sock_create", ATTACHABLE_OPT),
    _d("cgroup/post_bind4", "cgroup_sock", "cgroup_inet4_post_bind", ATTACHABLE),
    _d("cgroup/post_bind6", "cgroup_sock", "cgroup_inet6_post_bind", ATTACHABLE),
    _d("cgroup/bind4", "cgroup_sock_addr", "cgroup_inet4_bind", ATTACHABLE),
    _d("cgroup/bind6", "cgroup_sock_addr", "cgroup_inet6_bind", ATTACHABLE),
    _d("cgroup/connect4", "cgroup_sock_addr", "cgroup_inet4_connect", ATTACHABLE),
    _d("cgroup/connect6", "cgroup_sock_addr", "cgroup_inet6_connect", ATTACHABLE),
    _d("cgroup/sendmsg4", "cgroup_sock_addr", "cgroup_udp4_sendmsg", ATTACHABLE),
    _d("cgroup/sendmsg6", "cgroup_sock_addr", "cgroup_udp6_sendmsg", ATTACHABLE),
    _d("cgroup/recvmsg4", "cgroup_sock_addr", "cgroup_udp4_recvmsg", ATTACHABLE),
    _d("cgroup/recvmsg6", "cgroup_sock_addr", "cgroup_udp6_recvmsg", ATTACHABLE),
    _d("cgroup/getpeername4", "cgroup_sock_addr", "cgroup_inet4_getpeername", ATTACHABLE),
    _d("cgroup/getpeername6", "cgroup_sock_addr", "cgroup_inet6_getpeername", ATTACHABLE),
    _d("cgroup/getsockname4", "cgroup_sock_addr", "cgroup_inet4_getsockname", ATTACHABLE),
    _d("cgroup/getsockname6", "cgroup_sock_addr", "cgroup_inet6_getsockname", ATTACHABLE),
    _d("cgroup/sysctl", "cgroup_sysctl", "cgroup_sysctl", ATTACHABLE),
    _d("cgroup/getsockopt", "cgroup_sockopt", "cgroup_getsockopt", ATTACHABLE),
    _d("cgroup/setsockopt", "cgroup_sockopt", "cgroup_setsockopt", ATTACHABLE),
    _d("cgroup/dev", "cgroup_device", "cgroup_device", ATTACHABLE_OPT),
    _d("struct_ops+", "struct_ops", None, NONE),
    _d("sk_lookup", "sk_lookup", "sk_lookup", ATTACHABLE),
)


def matches(sec: str, name: str) -> bool:
    if sec.endswith("/"):
        return name.startswith(sec)
    if sec.endswith("+"):
        base = sec[:-1]
        return name == base or name.startswith(base + "/")
    return name == sec


def find_sec_def(name: str) -> SecDef | None:
    for d in SECTION_DEFS:
        if matches(d.sec, name):
            return d
    return None


def type_names() -> str:
    """libbpf_get_type_names(false): every section name of the table, each after a space."""
    return "".join(" " + d.sec for d in SECTION_DEFS)
