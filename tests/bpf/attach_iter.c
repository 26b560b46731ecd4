// A task iterator for bpft's `iter` target (tests/attach): it counts the tasks it
// visits in `iter_counts`; reading the pinned iterator link runs it.
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_iter_meta {
	void *seq;
	__u64 session_id;
	__u64 seq_num;
} __attribute__((preserve_access_index));

struct task_struct;

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} iter_counts SEC(".maps");

SEC("iter/task")
int iter_tasks(struct bpf_iter__task *ctx)
{
	__u32 slot = 0;
	__u64 *value;

	if (!ctx->task)
		return 0;
	value = bpf_map_lookup_elem(&iter_counts, &slot);
	if (value)
		__sync_fetch_and_add(value, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
