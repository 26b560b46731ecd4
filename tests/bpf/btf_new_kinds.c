/* BTF kinds newer than 5.10: FLOAT (5.13), DECL_TAG (5.16), TYPE_TAG (5.17), ENUM64 (6.0),
 * in one object whose programs need none of them. libbpf 1.1 replaces the kinds an older
 * kernel lacks (btfsanitize.py does the same), so bpftool and bpft load it on every kernel
 * of the matrix, with its BTF. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum big { BIG_ONE = 1, BIG_HUGE = 0x100000000ULL };  /* an ENUM64 */

struct sample {
	float ratio;                                        /* FLOAT */
	int __attribute__((btf_decl_tag("counter"))) hits;  /* DECL_TAG on a member */
	int __attribute__((btf_type_tag("user"))) *where;   /* TYPE_TAG */
	enum big size;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sample);
} samples SEC(".maps");

__u64 seen = 0;  /* .bss: a DATASEC */

static __attribute__((noinline)) __attribute__((btf_decl_tag("helper"))) int bump(__u32 key)
{
	struct sample *s = bpf_map_lookup_elem(&samples, &key);

	if (!s)
		return 0;
	s->hits++;
	return s->hits;
}

SEC("xdp") int new_kinds(struct xdp_md *ctx)
{
	seen += bump(0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
