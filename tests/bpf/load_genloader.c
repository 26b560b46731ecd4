/* Generated-loader tests (bpft -L): the relocations a loader program resolves when
 * it runs. Each kernel symbol used twice (the second use copies the first's result),
 * a weak typed ksym and a weak kfunc that no kernel has, a typeless ksym, a global
 * subprogram with CO-RE relocations linked into two programs, a hash of maps with an
 * initial slot, and a sleepable program. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

struct task_struct {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

extern const void schedule __ksym;				/* typeless */
extern const int bpf_prog_active __ksym;			/* typed (per-CPU) */
extern const int bpft_no_such_var __ksym __weak;		/* typed, weak, missing */
extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
extern void bpft_no_such_kfunc(void) __ksym __weak;

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} gl_inner SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} gl_outer SEC(".maps") = {
	.values = { [1] = &gl_inner },
};

__u64 gl_seen;

__attribute__((noinline)) int gl_pid_of(struct task_struct *t)
{
	if (!t)
		return 0;
	return BPF_CORE_READ(t, pid) + (bpf_core_field_exists(t->tgid) ? 1 : 0);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(gl_switch, _Bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct task_struct *a = bpf_task_acquire(next);
	struct task_struct *b;

	if (!a)
		return 0;
	b = bpf_task_acquire(prev);
	gl_seen = gl_pid_of(a) + (__u64)&schedule + (__u64)&schedule;
	gl_seen += *(int *)bpf_this_cpu_ptr(&bpf_prog_active);
	bpf_task_release(a);
	if (b)
		bpf_task_release(b);
	if (bpft_no_such_kfunc)
		bpft_no_such_kfunc();
	if (&bpft_no_such_var)
		gl_seen += bpft_no_such_var;
	return 0;
}

SEC("fentry.s/do_nanosleep")
int BPF_PROG(gl_sleepable)
{
	struct task_struct *t = (void *)bpf_get_current_task_btf();

	gl_seen = gl_pid_of(t) + *(int *)bpf_this_cpu_ptr(&bpf_prog_active);
	gl_seen += *(int *)bpf_this_cpu_ptr(&bpf_prog_active) + (__u64)&schedule;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
