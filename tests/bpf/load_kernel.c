/* Loader tests: .kconfig externs, kfunc calls (this kernel's BTF has no
 * variables with kallsyms addresses, so no ksym variables), tp_btf and
 * raw_tp/tracepoint programs, CO-RE reads of kernel structures. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

extern int LINUX_KERNEL_VERSION __kconfig;
extern _Bool CONFIG_BPF_SYSCALL __kconfig;
extern int CONFIG_HZ __kconfig __weak;

extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

struct task_struct {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

int seen_version;

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, _Bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct task_struct *t = bpf_task_acquire(next);

	if (t) {
		seen_version = t->pid;
		bpf_task_release(t);
	}
	return 0;
}

SEC("raw_tp/sys_enter")
int on_enter(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	seen_version = LINUX_KERNEL_VERSION + CONFIG_HZ + BPF_CORE_READ(t, tgid);
	return CONFIG_BPF_SYSCALL;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	return 0;
}

char _license[] SEC("license") = "GPL";
