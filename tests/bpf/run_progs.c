/* Programs of every type `prog run` (BPF_PROG_TEST_RUN) can run here, each
 * doing something visible in its output: xdp, tc, socket filter, cgroup_skb,
 * flow_dissector, raw_tp (args from ctx_in), syscall (ctx read and written),
 * a raw_tp that calls bpf_printk for the tracelog test, and a tracepoint
 * program, which cannot be test-run. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

/* xdp: stamp the first two bytes, grow the packet by 4 bytes (when it can). */
SEC("xdp") int run_xdp(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;

	if (data + 2 > end)
		return XDP_DROP;
	data[0] = 'X';
	data[1] = 'D';
	bpf_xdp_adjust_tail(ctx, 4);
	return XDP_PASS;
}

/* tc: rewrite byte 14 (after the Ethernet header), return the length. */
SEC("tc") int run_tc(struct __sk_buff *skb)
{
	__u8 mark = 'T';

	bpf_skb_store_bytes(skb, 14, &mark, 1, 0);
	skb->mark = 0x42;
	skb->priority = 7;
	return skb->len;
}

/* socket filter: accept the first half of the packet. */
SEC("socket") int run_socket(struct __sk_buff *skb) { return skb->len / 2; }

/* cgroup_skb: allow packets whose length is even. */
SEC("cgroup_skb/ingress") int run_cgroup_skb(struct __sk_buff *skb) { return !(skb->len & 1); }

/* flow_dissector: report the network header offset and protocol. */
SEC("flow_dissector") int run_flow_dissector(struct __sk_buff *skb)
{
	struct bpf_flow_keys *keys = skb->flow_keys;

	keys->nhoff = 14;
	keys->thoff = 34;
	keys->n_proto = 0x0008;
	keys->ip_proto = 17;
	return BPF_OK;
}

/* raw_tp: the sum of its first two arguments (from ctx_in). */
SEC("raw_tp/sys_enter") int run_raw_tp(__u64 *ctx) { return ctx[0] + ctx[1]; }

/* raw_tp that prints its first argument (tracelog test). */
SEC("raw_tp/sys_exit") int run_printk(__u64 *ctx)
{
	bpf_printk("bpft-run-printk %llx", ctx[0]);
	return 0;
}

struct syscall_args {
	__u32 a, b, sum, calls;
};

/* syscall: add a and b into sum, count calls; the context is copied back. */
SEC("syscall") int run_syscall(struct syscall_args *args)
{
	args->sum = args->a + args->b;
	args->calls++;
	return args->sum;
}

/* a type BPF_PROG_TEST_RUN does not support (the kernel says ENOTSUPP) */
SEC("tracepoint/syscalls/sys_enter_getppid") int run_tracepoint(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";
