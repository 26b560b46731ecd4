/* A struct_ops map (tcp_congestion_ops) with three programs: bpftool prog loadall
 * creates the map and loads each program as BPF_PROG_TYPE_STRUCT_OPS with
 * attach_btf_id = the kernel struct, expected_attach_type = member index. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
struct sock;
struct tcp_congestion_ops {
	__u32 (*ssthresh)(struct sock *sk);
	void (*cong_avoid)(struct sock *sk, __u32 ack, __u32 acked);
	__u32 (*undo_cwnd)(struct sock *sk);
	char name[16];
} __attribute__((preserve_access_index));
SEC("struct_ops/ss")
__u32 BPF_PROG(ss, struct sock *sk) { return 2; }
SEC("struct_ops/ca")
void BPF_PROG(ca, struct sock *sk, __u32 ack, __u32 acked) { }
SEC("struct_ops/undo")
__u32 BPF_PROG(undo, struct sock *sk) { return 2; }
SEC(".struct_ops")
struct tcp_congestion_ops bpft_cc = { .ssthresh = (void *)ss, .cong_avoid = (void *)ca, .undo_cwnd = (void *)undo, .name = "bpft_cc" };
char LICENSE[] SEC("license") = "GPL";
