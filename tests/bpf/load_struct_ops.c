/* A struct_ops map (tcp_congestion_ops) with three programs: bpftool prog loadall
 * creates the map and loads each program as BPF_PROG_TYPE_STRUCT_OPS with
 * attach_btf_id = the kernel struct, expected_attach_type = member index. */
#include "struct_ops_cc.h"
SEC("struct_ops/undo")
__u32 BPF_PROG(undo, struct sock *sk) { return 2; }
SEC(".struct_ops")
struct tcp_congestion_ops bpft_cc = { .ssthresh = (void *)ss, .cong_avoid = (void *)ca, .undo_cwnd = (void *)undo, .name = "bpft_cc" };
char LICENSE[] SEC("license") = "GPL";
