/* Loader tests: the second program of the object is refused by the verifier
 * (it reads an uninitialised register), so loadall must fail cleanly. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int good_one(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int bad_one(struct xdp_md *ctx)
{
	int x;

	asm volatile("r0 = r5; exit" ::: "r0");
	return x;
}

char _license[] SEC("license") = "GPL";
