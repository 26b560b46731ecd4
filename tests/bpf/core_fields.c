// CO-RE field relocations against the kernel's own types (bpft's corerelo tests).
// Local definitions carry only the fields used; libbpf and bpft must agree on
// every relocated instruction. One program per section, no maps, no globals:
// the tests load the relocated instructions themselves as well.
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct mm_struct {
	unsigned long task_size;
} __attribute__((preserve_access_index));

struct task_struct {
	unsigned int flags;
	int pid;
	int tgid;
	char comm[16];
	struct mm_struct *mm;
	struct task_struct *real_parent;
	unsigned int sched_reset_on_fork: 1;
	unsigned int in_execve: 1;
	unsigned int init_private_fork_class: 4;
	unsigned int in_iowait: 1;
} __attribute__((preserve_access_index));

/* a flavor with a field this kernel doesn't have, and one that changed size */
struct task_struct___old {
	int pid;
	long nonexistent_field_zz;
} __attribute__((preserve_access_index));

struct net_device {
	int ifindex;
} __attribute__((preserve_access_index));

/* dev sits in anonymous unions in the kernel's sk_buff */
struct sk_buff {
	struct net_device *dev;
	unsigned int len;
} __attribute__((preserve_access_index));

struct cgroup {
	int level;
	struct cgroup *ancestors[];
} __attribute__((preserve_access_index));

SEC("kprobe/offsets")
int offsets(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	int pid = BPF_CORE_READ(t, pid);
	int ppid = BPF_CORE_READ(t, real_parent, tgid);
	unsigned long sz = BPF_CORE_READ(t, mm, task_size);
	char c = BPF_CORE_READ(t, comm[3]);
	return pid + ppid + sz + c;
}

SEC("kprobe/sizes")
int sizes(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	return bpf_core_field_size(t->comm) + bpf_core_field_size(t->pid) +
	       bpf_core_field_size(t->mm) + bpf_core_field_size(t->comm[2]);
}

SEC("kprobe/exists")
int exists(void *ctx)
{
	struct task_struct___old *o = (void *)bpf_get_current_task();
	int r = 0;

	if (bpf_core_field_exists(o->pid))
		r += 1;
	if (bpf_core_field_exists(o->nonexistent_field_zz))
		r += BPF_CORE_READ(o, nonexistent_field_zz);  /* dead here: poisoned */
	return r;
}

SEC("kprobe/bitfields")
int bitfields(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	unsigned long a = BPF_CORE_READ_BITFIELD_PROBED(t, sched_reset_on_fork);
	unsigned long b = BPF_CORE_READ_BITFIELD_PROBED(t, init_private_fork_class);
	unsigned long c = BPF_CORE_READ_BITFIELD_PROBED(t, in_iowait);
	return a + b + c + __builtin_preserve_field_info(t->pid, BPF_FIELD_SIGNED) +
	       __builtin_preserve_field_info(t->flags, BPF_FIELD_SIGNED);
}

SEC("kprobe/nested")
int nested(void *ctx)
{
	struct sk_buff *skb = (void *)bpf_get_current_task(); /* any pointer will do */
	struct cgroup *cg = (void *)skb;
	int ifindex = BPF_CORE_READ(skb, dev, ifindex);
	struct cgroup *anc = BPF_CORE_READ(cg, ancestors[2]);
	return ifindex + BPF_CORE_READ(skb, len) + (long)anc;
}

char LICENSE[] SEC("license") = "GPL";
