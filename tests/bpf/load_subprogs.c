/* Loader tests: global and static subprograms shared by several programs,
 * a callback passed to bpf_loop, nested calls. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sub_count SEC(".maps");

int total;

static __noinline int add_twice(int x)
{
	return x * 2 + total;
}

__noinline int global_sum(int a, int b)
{
	return add_twice(a) + b;
}

static int loop_cb(__u32 idx, void *ctx)
{
	total += idx;
	return 0;
}

static __noinline int bump(void)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&sub_count, &k);

	if (v)
		__sync_fetch_and_add(v, 1);
	return v ? 1 : 0;
}

SEC("xdp")
int sub_xdp(struct xdp_md *ctx)
{
	bpf_loop(4, loop_cb, 0, 0);
	return global_sum(bump(), 1) > 0 ? XDP_PASS : XDP_DROP;
}

SEC("socket")
int sub_sock(struct __sk_buff *skb)
{
	return add_twice(skb->len) + bump();
}

SEC("tc")
int sub_tc(struct __sk_buff *skb)
{
	return global_sum(1, 2);
}

char _license[] SEC("license") = "GPL";
