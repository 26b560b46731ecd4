"""Kernel enum values and the names bpftool v7.1 (libbpf 1.1) prints for them.

The names are libbpf 1.1's: a program type newer than that release has no
name there, so bpftool v7.1 prints ``type N`` for it, and so do we.
"""

from __future__ import annotations

# enum bpf_prog_type, in order; index = value.
PROG_TYPE_NAMES = (
    "unspec",
    "socket_filter",
    "kprobe",
    "sched_cls",
    "sched_act",
    "tracepoint",
    "xdp",
    "perf_event",
    "cgroup_skb",
    "cgroup_sock",
    "lwt_in",
    "lwt_out",
    "lwt_xmit",
    "sock_ops",
    "sk_skb",
    "cgroup_device",
    "sk_msg",
    "raw_tracepoint",
    "cgroup_sock_addr",
    "lwt_seg6local",
    "lirc_mode2",
    "sk_reuseport",
    "flow_dissector",
    "cgroup_sysctl",
    "raw_tracepoint_writable",
    "cgroup_sockopt",
    "tracing",
    "struct_ops",
    "ext",
    "lsm",
    "sk_lookup",
    "syscall",
)
PROG_TYPE = {name: i for i, name in enumerate(PROG_TYPE_NAMES)}

# enum bpf_map_type
MAP_TYPE_NAMES = (
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
)
MAP_TYPE = {name: i for i, name in enumerate(MAP_TYPE_NAMES)}

# enum bpf_attach_type, in order; index = value.
ATTACH_TYPE_NAMES = (
    "cgroup_inet_ingress",
    "cgroup_inet_egress",
    "cgroup_inet_sock_create",
    "cgroup_sock_ops",
    "sk_skb_stream_parser",
    "sk_skb_stream_verdict",
    "cgroup_device",
    "sk_msg_verdict",
    "cgroup_inet4_bind",
    "cgroup_inet6_bind",
    "cgroup_inet4_connect",
    "cgroup_inet6_connect",
    "cgroup_inet4_post_bind",
    "cgroup_inet6_post_bind",
    "cgroup_udp4_sendmsg",
    "cgroup_udp6_sendmsg",
    "lirc_mode2",
    "flow_dissector",
    "cgroup_sysctl",
    "cgroup_udp4_recvmsg",
    "cgroup_udp6_recvmsg",
    "cgroup_getsockopt",
    "cgroup_setsockopt",
    "trace_raw_tp",
    "trace_fentry",
    "trace_fexit",
    "modify_return",
    "lsm_mac",
    "trace_iter",
    "cgroup_inet4_getpeername",
    "cgroup_inet6_getpeername",
    "cgroup_inet4_getsockname",
    "cgroup_inet6_getsockname",
    "xdp_devmap",
    "cgroup_inet_sock_release",
    "xdp_cpumap",
    "sk_lookup",
    "xdp",
    "sk_skb_verdict",
    "sk_reuseport_select",
    "sk_reuseport_select_or_migrate",
    "perf_event",
    "trace_kprobe_multi",
    "lsm_cgroup",
)
ATTACH_TYPE = {name: i for i, name in enumerate(ATTACH_TYPE_NAMES)}


def prog_type_name(value: int) -> str | None:
    """libbpf 1.1's name of a program type, or None if it has none."""
    return PROG_TYPE_NAMES[value] if 0 <= value < len(PROG_TYPE_NAMES) else None


def map_type_name(value: int) -> str | None:
    return MAP_TYPE_NAMES[value] if 0 <= value < len(MAP_TYPE_NAMES) else None


def attach_type_name(value: int) -> str | None:
    return ATTACH_TYPE_NAMES[value] if 0 <= value < len(ATTACH_TYPE_NAMES) else None
