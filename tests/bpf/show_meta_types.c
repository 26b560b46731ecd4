/* bpf_metadata_* of every kind bpftool's BTF dumper handles: structs with
 * bitfields, enums, arrays of ints and of non-printable chars, pointers,
 * 128-bit integers, unions, typedefs. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum colour { RED = 1, GREEN = 2, BLUE = -3 };
typedef unsigned short port_t;

struct flags {
	unsigned int a : 3;
	unsigned int b : 5;
	int c : 7;
	unsigned char d;
	port_t port;
	enum colour col;
	unsigned long long big;
};

union either {
	int i;
	char c[4];
};

volatile const struct flags bpf_metadata_flags SEC(".rodata") = {5, 17, -3, 200, 8080, BLUE, 123456789012ULL};
volatile const enum colour bpf_metadata_colour SEC(".rodata") = GREEN;
volatile const enum colour bpf_metadata_unnamed_colour SEC(".rodata") = (enum colour)7;
volatile const int bpf_metadata_ints[3] SEC(".rodata") = {1, -2, 3};
volatile const char bpf_metadata_raw[4] SEC(".rodata") = {1, 'a', 2, 0};
volatile const char bpf_metadata_unterminated[3] SEC(".rodata") = {'a', 'b', 'c'};
void *const volatile bpf_metadata_ptr SEC(".rodata") = 0;
volatile const unsigned __int128 bpf_metadata_wide SEC(".rodata") = ((unsigned __int128)1 << 70) | 5;
volatile const union either bpf_metadata_union SEC(".rodata") = {.i = 0x41424344};
volatile const signed char bpf_metadata_schar SEC(".rodata") = -7;
volatile const _Bool bpf_metadata_no SEC(".rodata") = 0;

SEC("socket")
int show_types(struct __sk_buff *skb)
{
	return bpf_metadata_colour + bpf_metadata_flags.a + bpf_metadata_ints[1] + bpf_metadata_raw[0] +
	       bpf_metadata_unterminated[0] + (long)bpf_metadata_ptr + (int)bpf_metadata_wide +
	       bpf_metadata_union.i + bpf_metadata_schar + bpf_metadata_no + bpf_metadata_unnamed_colour;
}

char _license[] SEC("license") = "GPL";
