/* Tracing programs for the kernel matrix: fentry, fexit (5.5+, refused under lockdown)
 * and a kprobe, on a syscall every kernel of the matrix has in its BTF
 * (__x64_sys_getpid is missing from 6.1's). */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

__u64 entries = 0, exits = 0, probes = 0;

SEC("fentry/__x64_sys_getpgid") int mx_fentry(__u64 *ctx)
{
	entries++;
	return 0;
}

SEC("fexit/__x64_sys_getpgid") int mx_fexit(__u64 *ctx)
{
	exits++;
	return 0;
}

SEC("kprobe/__x64_sys_getpgid") int mx_kprobe(void *ctx)
{
	probes++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
