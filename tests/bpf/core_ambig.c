// Two flavors of one struct that disagree on a field's offset: relocating
// `struct amb` against this object's own BTF is ambiguous (bpft's corerelo tests).
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct amb___a {
	int x;
	int y;
};

struct amb___b {
	int y;
	int x;
};

struct amb {
	int y;
} __attribute__((preserve_access_index));

SEC("kprobe/ambig")
int ambig(void *ctx)
{
	struct amb *p = (void *)bpf_get_current_task();

	/* the flavors must reach the BTF: relocations on them do */
	return BPF_CORE_READ(p, y) + bpf_core_type_size(struct amb___a) + bpf_core_type_size(struct amb___b);
}

char LICENSE[] SEC("license") = "GPL";
