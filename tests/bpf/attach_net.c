// Network programs for bpft's attach targets (tests/attach): XDP, tc/tcx and
// cgroup_skb, each counting its runs in its own slot of `net_counts`.
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum { SLOT_XDP, SLOT_TC, SLOT_CGROUP, NR_SLOTS };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} net_counts SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *value = bpf_map_lookup_elem(&net_counts, &slot);

	if (value)
		__sync_fetch_and_add(value, 1);
}

SEC("xdp")
int net_xdp(struct xdp_md *ctx)
{
	count(SLOT_XDP);
	return XDP_PASS;
}

SEC("tc")
int net_tc(struct __sk_buff *skb)
{
	count(SLOT_TC);
	return 0; /* TC_ACT_OK, TCX_PASS */
}

SEC("cgroup_skb/egress")
int net_cgroup(struct __sk_buff *skb)
{
	count(SLOT_CGROUP);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
