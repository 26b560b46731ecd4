// Programs and maps for `prog attach` / `prog detach` (bpft's attach tests):
// sk_msg and sk_skb programs for a sockmap and a sockhash, and a flow dissector.
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} attach_sockmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} attach_sockhash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} attach_hash SEC(".maps");

SEC("sk_msg")
int att_msg(struct sk_msg_md *msg)
{
	return SK_PASS;
}

SEC("sk_skb/stream_verdict")
int att_verdict(struct __sk_buff *skb)
{
	return SK_PASS;
}

SEC("sk_skb/stream_parser")
int att_parser(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("sk_skb")
int att_skb(struct __sk_buff *skb)
{
	return SK_PASS;
}

SEC("flow_dissector")
int att_flow(struct __sk_buff *skb)
{
	return BPF_OK;
}

char LICENSE[] SEC("license") = "GPL";
