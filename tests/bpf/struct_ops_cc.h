/* Shared by the struct_ops test objects: the kernel struct they fill (only the
 * members they use, matched by name through CO-RE) and two programs every
 * tcp_congestion_ops of theirs points at. */
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
