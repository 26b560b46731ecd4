/* A long program (~38,000 instructions) with BTF and line info: `prog dump`
 * splits an image this long over forked workers, and the tests check that the
 * pieces join into exactly what bpftool prints. The body is one inlined block
 * repeated a thousand times by macros (straight-line code, so the verifier
 * walks it once), keeping helper calls, bpf-to-bpf calls, 64-bit constants
 * (ld_imm64 pairs) and source lines spread over the whole image, so every
 * cut lands among them. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

__u64 long_seed = 11;

static __noinline __u64 long_mix(__u64 x)
{
	return (x ^ (x >> 7)) * 5;
}

static __always_inline __u64 step(__u64 acc, __u64 k)
{
	acc = acc * 3 + k;
	return acc ^ (acc >> 11);
}

static __always_inline __u64 block(__u64 acc, __u64 k)
{
	acc = step(acc, k);
	acc = step(acc, k + 1) + long_seed;
	acc = long_mix(step(acc, k + 2));
	acc = step(step(acc, k + 3), k + 4) ^ (0x100000001ULL * (k + 7));
	acc += bpf_get_prandom_u32();
	return step(acc, k + 5);
}

/* each BLOCK() is expanded on its own, so __COUNTER__ gives every block its own constants */
#define BLOCK() acc = block(acc, __COUNTER__ * 8);
#define B10() BLOCK() BLOCK() BLOCK() BLOCK() BLOCK() BLOCK() BLOCK() BLOCK() BLOCK() BLOCK()
#define B100() B10() B10() B10() B10() B10() B10() B10() B10() B10() B10()
#define B1000() B100() B100() B100() B100() B100() B100() B100() B100() B100() B100()

SEC("xdp")
int dump_long(struct xdp_md *ctx)
{
	__u64 acc = ctx->data_end - ctx->data;

	B1000()
	return acc & 1 ? XDP_PASS : XDP_DROP;
}
