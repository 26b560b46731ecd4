/* Programs that exercise what `prog dump` prints: bpf-to-bpf calls (static and
 * global subprograms), a bpf_loop callback, global data (.data, .bss,
 * .rodata), a tail call, every atomic of -mcpu=v3 (add/or/and/xor, with and
 * without fetch, xchg, cmpxchg; 32 and 64 bits), ALU32/JMP32, kfuncs, PROBE_MEM
 * loads (tp_btf), LD_ABS/LD_IND (socket filter), and source lines with quotes
 * and backslashes. Built with -mcpu=v3 (see the Makefile's %_v3.o rule). */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} dump_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} dump_jmp SEC(".maps");

__u64 dump_data_var = 7;
__u64 dump_bss_var;
const volatile __u32 dump_ro = 3;

static __noinline int sub_mul(int a, int b)
{
	return a * 3 + b;
}

__noinline int dump_global_fn(int x)
{
	if (x > 100)
		return x - 100;
	return sub_mul(x, 1);
}

static int loop_cb(__u32 idx, void *ctx)
{
	__u64 *acc = ctx;

	*acc += idx;
	return 0;
}

SEC("xdp")
int dump_xdp(struct xdp_md *ctx)
{
	__u32 key = 0, *v32;
	__u64 *v, acc = 0, old;

	v = bpf_map_lookup_elem(&dump_counts, &key);
	if (!v)
		return XDP_ABORTED;
	__sync_fetch_and_add(v, 1);
	old = __sync_fetch_and_add(v, 2);
	__sync_fetch_and_or(v, 4);
	__sync_fetch_and_and(v, ~0ULL);
	__sync_fetch_and_xor(v, 0);
	old += __sync_fetch_and_or(v, 8);
	old += __sync_fetch_and_and(v, 0xff);
	old += __sync_fetch_and_xor(v, 1);
	old += __sync_lock_test_and_set(v, 5);
	old += __sync_val_compare_and_swap(v, 5, 6);
	v32 = (__u32 *)v;
	__sync_fetch_and_add(v32, 1);
	old += __sync_fetch_and_add(v32, 1);
	old += __sync_lock_test_and_set(v32, 2);
	old += __sync_val_compare_and_swap(v32, 2, 3);
	bpf_loop(4, loop_cb, &acc, 0);
	dump_bss_var = acc + old + dump_ro;
	dump_data_var += sub_mul(ctx->ingress_ifindex, 2) + dump_global_fn(ctx->rx_queue_index);
	bpf_tail_call(ctx, &dump_jmp, 0);
	bpf_printk("it's \"quoted\" \\ done\n");
	return XDP_PASS;
}

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

SEC("socket")
int dump_ldabs(struct __sk_buff *skb)
{
	__u64 x = load_byte(skb, 12);

	x += load_half(skb, 14);
	x += load_word(skb, skb->len & 7);
	return x & 0xffff;
}

struct task_struct {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

extern void bpf_rcu_read_lock(void) __ksym;
extern void bpf_rcu_read_unlock(void) __ksym;

SEC("tp_btf/sched_switch")
int BPF_PROG(dump_tp_btf, _Bool preempt, struct task_struct *prev, struct task_struct *next)
{
	bpf_rcu_read_lock();
	dump_bss_var += prev->pid + next->tgid;
	bpf_rcu_read_unlock();
	return 0;
}

SEC("tc")
int dump_tc(struct __sk_buff *skb)
{
	__u32 len = skb->len;

	if (len > 1500)
		return 2;
	if ((int)len < 0)
		return 1;
	return sub_mul(len, skb->protocol) > 7 ? 0 : 1;
}
