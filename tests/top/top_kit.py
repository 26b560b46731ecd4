"""What the top tests share: a program that does nothing, and running it from here."""

from __future__ import annotations

import ctypes

from bpft.kernel import syscall

SOCKET_FILTER = 1
RETURN_ZERO = bytes.fromhex("b7000000000000009500000000000000")  # r0 = 0; exit


def load_return_zero(name: str) -> int:
    """An fd on a new socket filter named ``name`` that returns 0 (the caller closes it)."""
    return syscall.prog_load_simple(SOCKET_FILTER, RETURN_ZERO, name=name)


def drive(fd: int, repeat: int) -> None:
    """Run the program ``repeat`` times on a 64-byte packet (BPF_PROG_TEST_RUN): with statistics
    on, its run count grows by exactly ``repeat``."""
    data = ctypes.create_string_buffer(64)
    attr = syscall.TestRunAttr(prog_fd=fd, data_size_in=64, data_in=ctypes.addressof(data), repeat=repeat)
    syscall.prog_test_run(attr)
