// CO-RE type and enum relocations (bpft's corerelo tests): type existence,
// size, local/target ids, enum value existence and value (32 and 64 bit).
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct {
	int pid;
} __attribute__((preserve_access_index));

struct nonexistent_struct_zz {
	int x;
};

typedef unsigned int pid_t___local;
typedef int pid_t;

enum bpf_map_type___local {
	BPF_MAP_TYPE_HASH___local = 1,
	BPF_MAP_TYPE_SOCKMAP___local = 99,
	BPF_MAP_TYPE_NOT_THERE_ZZ = 7,
};

enum perf_callchain_context {
	PERF_CONTEXT_KERNEL = 1,
	PERF_CONTEXT_USER = 2,
};

union bpf_attr___u {
	int x;
};

SEC("kprobe/types")
int types(void *ctx)
{
	int r = 0;

	r += bpf_core_type_exists(struct task_struct);
	r += bpf_core_type_exists(struct nonexistent_struct_zz) * 2;
	r += bpf_core_type_exists(pid_t) * 4;
	r += bpf_core_type_exists(union bpf_attr___u) * 8;
	r += bpf_core_type_size(struct task_struct);
	r += bpf_core_type_size(pid_t);
	r += bpf_core_type_size(union bpf_attr___u);
	return r;
}

SEC("kprobe/ids")
int ids(void *ctx)
{
	return bpf_core_type_id_kernel(struct task_struct) + bpf_core_type_id_local(struct task_struct) +
	       bpf_core_type_id_kernel(struct nonexistent_struct_zz) + bpf_core_type_id_kernel(pid_t);
}

SEC("kprobe/enums")
int enums(void *ctx)
{
	long r = 0;

	r += bpf_core_enum_value_exists(enum bpf_map_type___local, BPF_MAP_TYPE_HASH___local);
	r += bpf_core_enum_value_exists(enum bpf_map_type___local, BPF_MAP_TYPE_NOT_THERE_ZZ) * 2;
	r += bpf_core_enum_value(enum bpf_map_type___local, BPF_MAP_TYPE_SOCKMAP___local);
	r += bpf_core_enum_value(enum perf_callchain_context, PERF_CONTEXT_KERNEL);
	r += bpf_core_enum_value(enum perf_callchain_context, PERF_CONTEXT_USER);
	if (bpf_core_enum_value_exists(enum bpf_map_type___local, BPF_MAP_TYPE_NOT_THERE_ZZ))
		r += bpf_core_enum_value(enum bpf_map_type___local, BPF_MAP_TYPE_NOT_THERE_ZZ);
	return r;
}

char LICENSE[] SEC("license") = "GPL";
