// CO-RE relocated direct loads through BTF pointers (tp_btf): LDX offsets and
// load-size adjustment (a u64 local field that is a u32 in the kernel).
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
} __attribute__((preserve_access_index));

struct task_struct___wide {
	unsigned long long flags;   /* unsigned int in the kernel */
	unsigned long long ptrace;  /* unsigned int in the kernel */
} __attribute__((preserve_access_index));

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, _Bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct task_struct___wide *w = (void *)next;

	return next->pid + prev->real_parent->tgid + (int)w->flags + (int)w->ptrace;
}

char LICENSE[] SEC("license") = "GPL";
