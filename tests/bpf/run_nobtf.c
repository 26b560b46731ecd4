/* An XDP program without BTF (built without -g): `prog profile` must refuse it
 * for hardware metrics (fentry/fexit need the target's BTF), and the BPF-stats
 * fallback must still work on it. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp") int run_nobtf(struct xdp_md *ctx) { return XDP_PASS; }

char LICENSE[] SEC("license") = "GPL";
