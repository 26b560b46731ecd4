/* Loader tests: BTF maps of several kinds, global data in .data/.bss/.rodata
 * and custom sections, several programs per section, tail calls with initial
 * prog-array values, map-in-map with initial values, pinning by name. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} load_inner1 SEC(".maps"), load_inner2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} load_outer SEC(".maps") = {
	.values = { [0] = &load_inner1, [2] = &load_inner2 },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 128);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct { __u64 a; __u32 b; });
} load_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(int));
	__uint(value_size, sizeof(int));
} load_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} load_rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} load_lru SEC(".maps");

int counter = 3;
int zeroed;
volatile const int limit = 42;
static volatile int hidden_static = 9;
int custom_data SEC(".data.custom") = 5;
volatile const char custom_ro[8] SEC(".rodata.custom") = "ro";

int tail_a(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__array(values, int (void *));
} load_jmp SEC(".maps") = {
	.values = { [1] = (void *)&tail_a },
};

SEC("xdp")
int tail_a(struct xdp_md *ctx)
{
	counter++;
	return XDP_PASS;
}

SEC("xdp")
int entry(struct xdp_md *ctx)
{
	__u32 k = 0;
	void *inner = bpf_map_lookup_elem(&load_outer, &k);
	__u64 hk = counter + zeroed + hidden_static;

	if (inner) {
		__u32 *v = bpf_map_lookup_elem(inner, &k);
		if (v)
			*v += custom_data;
	}
	bpf_map_lookup_elem(&load_hash, &hk);
	bpf_map_lookup_elem(&load_lru, &k);
	bpf_tail_call(ctx, &load_jmp, 1);
	return counter > limit ? XDP_DROP : custom_ro[0];
}

SEC("tc")
int tc_prog(struct __sk_buff *skb)
{
	__u64 *p = bpf_ringbuf_reserve(&load_rb, 8, 0);

	if (p) {
		*p = skb->len;
		bpf_ringbuf_submit(p, 0);
	}
	bpf_perf_event_output(skb, &load_events, BPF_F_CURRENT_CPU, &zeroed, sizeof(zeroed));
	return 0;
}

char _license[] SEC("license") = "GPL";
