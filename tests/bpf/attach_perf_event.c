// A perf_event program for bpft's `perf_event` target (tests/attach): it counts
// the samples of the event it is attached to in `sample_counts`, one slot per CPU
// it ran on (slot NR_SLOTS - 1 for CPUs beyond).
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <bpf/bpf_helpers.h>

#define NR_SLOTS 64

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} sample_counts SEC(".maps");

SEC("perf_event")
int count_samples(struct bpf_perf_event_data *ctx)
{
	__u32 slot = bpf_get_smp_processor_id();
	__u64 *value;

	if (slot >= NR_SLOTS)
		slot = NR_SLOTS - 1;
	value = bpf_map_lookup_elem(&sample_counts, &slot);
	if (value)
		__sync_fetch_and_add(value, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
