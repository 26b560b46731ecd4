/* A program without BTF (built without -g, so no maps either: libbpf needs
 * BTF for them): no function headers or source lines in `prog dump`, and
 * `linum` has nothing to show. A subprogram and a helper call still resolve. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

static __noinline int nobtf_sub(int x)
{
	return x * 5 + 1;
}

SEC("xdp")
int dump_nobtf(struct xdp_md *ctx)
{
	__u64 t = bpf_ktime_get_ns();

	return (nobtf_sub(ctx->ingress_ifindex) + t) & 1 ? XDP_PASS : XDP_DROP;
}
