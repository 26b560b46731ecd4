/* Programs for `prog show` tests: bpf_metadata_* variables of several types,
 * a name longer than the kernel's 15 characters, a map, two program types. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

volatile const char bpf_metadata_name[] SEC(".rodata") = "hello";
volatile const int bpf_metadata_num SEC(".rodata") = -5;
volatile const unsigned long long bpf_metadata_big SEC(".rodata") = 1ULL << 40;
volatile const _Bool bpf_metadata_flag SEC(".rodata") = 1;
volatile const int not_metadata SEC(".rodata") = 7;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, int);
	__type(value, long);
} show_counts SEC(".maps");

SEC("xdp")
int show_xdp_with_a_long_program_name(struct xdp_md *ctx)
{
	int k = 0;
	long *v = bpf_map_lookup_elem(&show_counts, &k);

	if (v)
		__sync_fetch_and_add(v, 1);
	return bpf_metadata_num < 0 && not_metadata == 7 ? XDP_PASS : XDP_DROP;
}

SEC("socket")
int show_sock(struct __sk_buff *skb)
{
	return bpf_metadata_flag ? skb->len : 0;
}

char _license[] SEC("license") = "GPL";
