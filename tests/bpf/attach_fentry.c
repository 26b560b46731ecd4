// fentry and fexit programs for bpft's `tracing` target (tests/attach): a
// locked-down kernel refuses to load them; elsewhere they count in `fentry_counts`.
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum { SLOT_FENTRY, SLOT_FEXIT, NR_SLOTS };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} fentry_counts SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *value = bpf_map_lookup_elem(&fentry_counts, &slot);

	if (value)
		__sync_fetch_and_add(value, 1);
}

SEC("fentry/do_sys_openat2")
int fentry_open(void *ctx)
{
	count(SLOT_FENTRY);
	return 0;
}

SEC("fexit/do_sys_openat2")
int fexit_open(void *ctx)
{
	count(SLOT_FEXIT);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
