// An sk_lookup program for bpft's `sk_lookup netns PATH` target (tests/attach):
// connections to STEERED_PORT go to the socket in slot 0 of `steer_sockets`
// (whatever port it listens on); each steered lookup is counted in `steer_counts`.
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define STEERED_PORT 7007

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} steer_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} steer_sockets SEC(".maps");

SEC("sk_lookup")
int steer(struct bpf_sk_lookup *ctx)
{
	__u32 zero = 0;
	__u64 *steered = bpf_map_lookup_elem(&steer_counts, &zero);
	struct bpf_sock *sk;
	long err;

	if (ctx->local_port != STEERED_PORT)
		return SK_PASS;
	sk = bpf_map_lookup_elem(&steer_sockets, &zero);
	if (!sk)
		return SK_PASS;
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	if (!err && steered)
		__sync_fetch_and_add(steered, 1);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
