/* An LD_PRELOAD shim that records what `bpftool -L prog load` hands the kernel: the
 * generated loader program's instructions and its data blob, as libbpf's
 * bpf_load_and_run() passes them to bpf(). tests/load/test_genloader.py builds it and
 * compares bpft's generated loader with them, byte for byte.
 *
 * BPFCAPTURE_DIR names the directory the two files go to: "insns" (the
 * BPF_PROG_TYPE_SYSCALL program's instructions) and "data" (the value written to the
 * "__loader.map" array). Every call goes on to the real syscall() unchanged.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <linux/bpf.h>

static long (*real_syscall)(long, ...);
static __u32 loader_value_size;
static int loader_map_created;

static void save(const char *name, const void *bytes, size_t size)
{
	const char *dir = getenv("BPFCAPTURE_DIR");
	char path[4096];
	FILE *f;

	if (!dir)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f)
		return;
	if (size)
		fwrite(bytes, size, 1, f);
	fclose(f);
}

static void record(int cmd, const union bpf_attr *attr)
{
	switch (cmd) {
	case BPF_MAP_CREATE:
		if (!strncmp(attr->map_name, "__loader.map", sizeof(attr->map_name))) {
			loader_value_size = attr->value_size;
			loader_map_created = 1;
		}
		break;
	case BPF_MAP_UPDATE_ELEM:
		if (loader_map_created) {
			save("data", (const void *)(unsigned long)attr->value, loader_value_size);
			loader_map_created = 0;
		}
		break;
	case BPF_PROG_LOAD:
		if (attr->prog_type == BPF_PROG_TYPE_SYSCALL)
			save("insns", (const void *)(unsigned long)attr->insns,
			     (size_t)attr->insn_cnt * sizeof(struct bpf_insn));
		break;
	}
}

long syscall(long number, ...)
{
	long a[6];
	va_list ap;
	int i;

	va_start(ap, number);
	for (i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (!real_syscall)
		real_syscall = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
	if (number == __NR_bpf)
		record((int)a[0], (const union bpf_attr *)a[1]);
	return real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
