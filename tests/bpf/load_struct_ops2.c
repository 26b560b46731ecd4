/* Two struct_ops maps (tcp_congestion_ops) in one object: two programs serve both
 * maps (same member of the same kernel struct), one program serves each map alone.
 * bpftool prog loadall creates both maps and loads every program once. */
#include "struct_ops_cc.h"
SEC("struct_ops/undo_one")
__u32 BPF_PROG(undo_one, struct sock *sk) { return 1; }
SEC("struct_ops/undo_two")
__u32 BPF_PROG(undo_two, struct sock *sk) { return 2; }
SEC(".struct_ops")
struct tcp_congestion_ops bpft_cc_one = {
	.ssthresh = (void *)ss, .cong_avoid = (void *)ca, .undo_cwnd = (void *)undo_one, .name = "bpft_cc_one",
};
SEC(".struct_ops")
struct tcp_congestion_ops bpft_cc_two = {
	.ssthresh = (void *)ss, .cong_avoid = (void *)ca, .undo_cwnd = (void *)undo_two, .name = "bpft_cc_two",
};
char LICENSE[] SEC("license") = "GPL";
