// Tracing programs for bpft's attach targets (tests/attach) that this kind of
// kernel loads even when locked down: a tracepoint, a raw tracepoint and a
// BTF tracepoint, each counting its runs in its own slot of `trace_counts`.
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum { SLOT_TP, SLOT_RAW_TP, SLOT_TP_BTF, NR_SLOTS };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} trace_counts SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *value = bpf_map_lookup_elem(&trace_counts, &slot);

	if (value)
		__sync_fetch_and_add(value, 1);
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int trace_tp(void *ctx)
{
	count(SLOT_TP);
	return 0;
}

SEC("raw_tp/sys_enter")
int trace_raw_tp(void *ctx)
{
	count(SLOT_RAW_TP);
	return 0;
}

SEC("tp_btf/sys_enter")
int trace_tp_btf(void *ctx)
{
	count(SLOT_TP_BTF);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
