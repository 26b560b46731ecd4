/* The kernel matrix's programs: every one loads on 5.10 (run_progs.o has a syscall
 * program, 5.14+). Test-runnable xdp, tc and socket filters, a raw_tp that prints for
 * the tracelog test, and an xdp program with subprograms as the profile target. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} mx_runs SEC(".maps");

/* xdp: swap the first two bytes; a packet shorter than that passes untouched. */
SEC("xdp") int mx_xdp(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end, first;

	if (data + 2 <= end) {
		first = data[0];
		data[0] = data[1];
		data[1] = first;
	}
	return XDP_TX;
}

/* tc: mark the packet with its length and pass it on. */
SEC("tc") int mx_tc(struct __sk_buff *skb)
{
	skb->mark = skb->len;
	return skb->len & 1 ? 0 : 1;
}

/* socket filter: accept the first half of the packet. */
SEC("socket") int mx_socket(struct __sk_buff *skb) { return skb->len / 2; }

/* raw_tp that prints its first argument (tracelog test). */
SEC("raw_tp/sys_exit") int mx_printk(__u64 *ctx)
{
	bpf_printk("bpft-matrix-printk %llx", ctx[0]);
	return 0;
}

static __attribute__((noinline)) int count_run(void)
{
	__u32 key = 0;
	__u64 *runs = bpf_map_lookup_elem(&mx_runs, &key);

	if (!runs)
		return 0;
	__sync_fetch_and_add(runs, 1);
	return 1;
}

/* the profile target: counts its runs in mx_runs */
SEC("xdp") int mx_target(struct xdp_md *ctx)
{
	return count_run() ? XDP_PASS : XDP_ABORTED;
}

char LICENSE[] SEC("license") = "GPL";
