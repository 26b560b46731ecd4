/* Test oracle: prints profile readings with the C printf formats and float
 * arithmetic of bpftool v7.1's profile_print_readings_plain(), so the test can
 * compare bpft's Python rendering with what C prints for the same readings.
 *
 * argv: run_cnt, then per metric of bpftool's table (cycles, instructions,
 * l1d_loads, llc_misses, itlb_misses, dtlb_misses): selected counter enabled running
 */
#include <stdio.h>
#include <stdlib.h>

struct m { const char *name; int sel; unsigned long long c, e, r; int ratio; const char *desc; float mul; };

int main(int argc, char **argv)
{
	struct m ms[6] = {
		{ "cycles" }, { "instructions", 0, 0, 0, 0, 1, "insns per cycle", 1.0 },
		{ "l1d_loads" }, { "llc_misses", 0, 0, 0, 0, 2, "LLC misses per million insns", 1e6 },
		{ "itlb_misses", 0, 0, 0, 0, 2, "itlb misses per million insns", 1e6 },
		{ "dtlb_misses", 0, 0, 0, 0, 2, "dtlb misses per million insns", 1e6 },
	};
	unsigned long long total;
	int i, a = 2;

	if (argc != 2 + 6 * 4)
		return 2;
	total = strtoull(argv[1], NULL, 0);
	for (i = 0; i < 6; i++, a += 4) {
		ms[i].sel = atoi(argv[a]);
		ms[i].c = strtoull(argv[a + 1], NULL, 0);
		ms[i].e = strtoull(argv[a + 2], NULL, 0);
		ms[i].r = strtoull(argv[a + 3], NULL, 0);
	}
	printf("\n%18llu %-20s\n", total, "run_cnt");
	for (i = 0; i < 6; i++) {
		int r = ms[i].ratio - 1;

		if (!ms[i].sel)
			continue;
		printf("%18llu %-20s", ms[i].c, ms[i].name);
		if (r >= 0 && ms[r].sel && ms[r].c > 0)
			printf("# %8.2f %-30s", ms[i].c * ms[i].mul / ms[r].c, ms[i].desc);
		else
			printf("%-41s", "");
		if (ms[i].e > ms[i].r)
			printf("(%4.2f%%)", ms[i].r * 100.0 / ms[i].e);
		printf("\n");
	}
	return 0;
}
