"""perf_event_open(2) through ctypes: the attr layout, open, enable/disable.

Layouts and constants are the kernel's UAPI (``include/uapi/linux/perf_event.h``).
Nothing here prints; failures are OSError with the errno.
"""

from __future__ import annotations

import ctypes
import fcntl
import os

_NR_PERF_EVENT_OPEN = {
    "x86_64": 298,
    "aarch64": 241,
    "arm64": 241,
    "riscv64": 241,
    "s390x": 331,
    "ppc64le": 319,
    "i686": 336,
    "armv7l": 364,
}

# enum perf_type_id
TYPE_HARDWARE = 0
TYPE_SOFTWARE = 1
TYPE_TRACEPOINT = 2
TYPE_HW_CACHE = 3

# enum perf_hw_id
COUNT_HW_CPU_CYCLES = 0
COUNT_HW_INSTRUCTIONS = 1

# enum perf_hw_cache_id / _op_id / _op_result_id
HW_CACHE_L1D = 0
HW_CACHE_L1I = 1
HW_CACHE_LL = 2
HW_CACHE_DTLB = 3
HW_CACHE_ITLB = 4
HW_CACHE_BPU = 5
HW_CACHE_NODE = 6
HW_CACHE_OP_READ = 0
HW_CACHE_OP_WRITE = 1
HW_CACHE_OP_PREFETCH = 2
HW_CACHE_RESULT_ACCESS = 0
HW_CACHE_RESULT_MISS = 1

# perf_event_attr flag bits (the bitfield after read_format)
FLAG_DISABLED = 1 << 0
FLAG_INHERIT = 1 << 1
FLAG_PINNED = 1 << 2
FLAG_EXCLUSIVE = 1 << 3
FLAG_EXCLUDE_USER = 1 << 4
FLAG_EXCLUDE_KERNEL = 1 << 5
FLAG_EXCLUDE_HV = 1 << 6
FLAG_EXCLUDE_IDLE = 1 << 7

# ioctls: _IO('$', n)
IOC_ENABLE = 0x2400
IOC_DISABLE = 0x2401

ATTR_SIZE_VER8 = 136

_u16, _u32, _s32, _u64 = ctypes.c_uint16, ctypes.c_uint32, ctypes.c_int32, ctypes.c_uint64


class PerfEventAttr(ctypes.Structure):
    """struct perf_event_attr (PERF_ATTR_SIZE_VER8, 136 bytes)."""

    _fields_ = [
        ("type", _u32),
        ("size", _u32),
        ("config", _u64),
        ("sample_period", _u64),  # also sample_freq
        ("sample_type", _u64),
        ("read_format", _u64),
        ("flags", _u64),  # disabled:1, inherit:1, pinned:1, exclusive:1, exclude_user:1, ...
        ("wakeup_events", _u32),  # also wakeup_watermark
        ("bp_type", _u32),
        ("config1", _u64),
        ("config2", _u64),
        ("branch_sample_type", _u64),
        ("sample_regs_user", _u64),
        ("sample_stack_user", _u32),
        ("clockid", _s32),
        ("sample_regs_intr", _u64),
        ("aux_watermark", _u32),
        ("sample_max_stack", _u16),
        ("_reserved_2", _u16),
        ("aux_sample_size", _u32),
        ("_reserved_3", _u32),
        ("sig_data", _u64),
        ("config3", _u64),
    ]


assert ctypes.sizeof(PerfEventAttr) == ATTR_SIZE_VER8


def make_attr(type_: int, config: int, flags: int = 0) -> PerfEventAttr:
    return PerfEventAttr(type=type_, size=ATTR_SIZE_VER8, config=config, flags=flags)


def hw_cache_config(cache: int, op: int, result: int) -> int:
    """The config of a PERF_TYPE_HW_CACHE event: id | op << 8 | result << 16."""
    return cache | (op << 8) | (result << 16)


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_nr = _NR_PERF_EVENT_OPEN.get(os.uname().machine, 298)


def perf_event_open(attr: PerfEventAttr, pid: int = -1, cpu: int = -1, group_fd: int = -1, flags: int = 0) -> int:
    """perf_event_open(2); returns the event fd or raises OSError."""
    ret = _syscall(
        ctypes.c_long(_nr),
        ctypes.byref(attr),
        ctypes.c_int(pid),
        ctypes.c_int(cpu),
        ctypes.c_int(group_fd),
        ctypes.c_ulong(flags),
    )
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def enable(fd: int) -> None:
    fcntl.ioctl(fd, IOC_ENABLE, 0)


def disable(fd: int) -> None:
    fcntl.ioctl(fd, IOC_DISABLE, 0)


def possible_cpus() -> int:
    """libbpf_num_possible_cpus(): the count of CPUs in /sys/devices/system/cpu/possible."""
    with open("/sys/devices/system/cpu/possible") as f:
        text = f.read().strip()
    count = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        count += (int(hi) if hi else int(lo)) - int(lo) + 1
    return count
