// Probe programs for bpft's attach targets (tests/attach): kprobe, kretprobe,
// uprobe and uretprobe, counting in `probe_counts`. They load anywhere; the
// kernel may refuse to attach them (no kprobe PMU, lockdown).
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum { SLOT_KPROBE, SLOT_KRETPROBE, SLOT_UPROBE, SLOT_URETPROBE, NR_SLOTS };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} probe_counts SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *value = bpf_map_lookup_elem(&probe_counts, &slot);

	if (value)
		__sync_fetch_and_add(value, 1);
}

SEC("kprobe/do_sys_openat2")
int probe_kprobe(void *ctx)
{
	count(SLOT_KPROBE);
	return 0;
}

SEC("kretprobe/do_sys_openat2")
int probe_kretprobe(void *ctx)
{
	count(SLOT_KRETPROBE);
	return 0;
}

SEC("uprobe")
int probe_uprobe(void *ctx)
{
	count(SLOT_UPROBE);
	return 0;
}

SEC("uretprobe")
int probe_uretprobe(void *ctx)
{
	count(SLOT_URETPROBE);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
