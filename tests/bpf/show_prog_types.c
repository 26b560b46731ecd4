/* One program of each type `prog show` must list like bpftool: xdp, tc,
 * socket filter, cgroup_skb, sk_msg, sk_skb, flow_dissector, tracepoint,
 * raw_tracepoint, tp_btf, kprobe, perf_event; with a sockmap, a hash map and
 * .data so several show map_ids. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} types_sockmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} types_hits SEC(".maps");

__u64 types_counter = 0;

static __always_inline void hit(__u32 key)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(&types_hits, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&types_hits, &key, &one, BPF_ANY);
}

SEC("xdp") int t_xdp(struct xdp_md *ctx) { hit(1); return XDP_PASS; }
SEC("tc") int t_tc(struct __sk_buff *skb) { hit(2); return 0; }
SEC("socket") int t_socket(struct __sk_buff *skb) { return skb->len; }
SEC("cgroup_skb/ingress") int t_cgroup_skb(struct __sk_buff *skb) { hit(3); return 1; }
SEC("sk_msg") int t_sk_msg(struct sk_msg_md *msg) { return SK_PASS; }
SEC("sk_skb/stream_verdict") int t_sk_skb(struct __sk_buff *skb)
{
	return bpf_sk_redirect_map(skb, &types_sockmap, 0, 0);
}
SEC("flow_dissector") int t_flow_dissector(struct __sk_buff *skb) { return BPF_OK; }
SEC("tracepoint/syscalls/sys_enter_getpid") int t_tracepoint(void *ctx) { types_counter++; return 0; }
SEC("raw_tracepoint/sys_enter") int t_raw_tp(struct bpf_raw_tracepoint_args *ctx) { return 0; }
SEC("tp_btf/sched_switch") int t_tp_btf(__u64 *ctx) { return 0; }
SEC("kprobe/do_nanosleep") int t_kprobe(void *ctx) { return 0; }
SEC("perf_event") int t_perf_event(void *ctx) { return 0; }

char _license[] SEC("license") = "GPL";
