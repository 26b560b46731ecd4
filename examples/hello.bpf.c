/* The example program of the README: an XDP program that counts packets,
 * with a bpf_metadata_* variable that `bpft prog show` prints.
 * Build: clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c hello.bpf.c -o hello.bpf.o */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

volatile const char bpf_metadata_greeting[] SEC(".rodata") = "hello from bpft";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} hello_packets SEC(".maps");

SEC("xdp")
int hello(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *count = bpf_map_lookup_elem(&hello_packets, &key);

	if (count)
		__sync_fetch_and_add(count, 1);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
