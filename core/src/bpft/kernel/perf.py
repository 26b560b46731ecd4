"""perf_event_open(2) through ctypes: the attr layout, open, enable/disable.

Layouts and constants are the kernel's UAPI (``include/uapi/linux/perf_event.h``).
Nothing here prints; failures are OSError with the errno.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
from enum import IntEnum

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


class HwId(IntEnum):
    """enum perf_hw_id: the generic hardware events (PERF_TYPE_HARDWARE configs)."""

    CPU_CYCLES = 0
    INSTRUCTIONS = 1
    CACHE_REFERENCES = 2
    CACHE_MISSES = 3
    BRANCH_INSTRUCTIONS = 4
    BRANCH_MISSES = 5
    BUS_CYCLES = 6
    STALLED_CYCLES_FRONTEND = 7
    STALLED_CYCLES_BACKEND = 8
    REF_CPU_CYCLES = 9


class SwId(IntEnum):
    """enum perf_sw_ids: the software events (PERF_TYPE_SOFTWARE configs)."""

    CPU_CLOCK = 0
    TASK_CLOCK = 1
    PAGE_FAULTS = 2
    CONTEXT_SWITCHES = 3
    CPU_MIGRATIONS = 4
    PAGE_FAULTS_MIN = 5
    PAGE_FAULTS_MAJ = 6
    ALIGNMENT_FAULTS = 7
    EMULATION_FAULTS = 8
    DUMMY = 9
    BPF_OUTPUT = 10
    CGROUP_SWITCHES = 11


#: perf(1)'s names of the generic events a BPF program can sample, as (type, config).
#: ``dummy`` and ``bpf-output`` are left out: they never overflow, so a program on them never runs.
EVENT_BY_NAME: dict[str, tuple[int, int]] = {
    "cpu-clock": (TYPE_SOFTWARE, SwId.CPU_CLOCK),
    "task-clock": (TYPE_SOFTWARE, SwId.TASK_CLOCK),
    "page-faults": (TYPE_SOFTWARE, SwId.PAGE_FAULTS),
    "context-switches": (TYPE_SOFTWARE, SwId.CONTEXT_SWITCHES),
    "cpu-migrations": (TYPE_SOFTWARE, SwId.CPU_MIGRATIONS),
    "minor-faults": (TYPE_SOFTWARE, SwId.PAGE_FAULTS_MIN),
    "major-faults": (TYPE_SOFTWARE, SwId.PAGE_FAULTS_MAJ),
    "alignment-faults": (TYPE_SOFTWARE, SwId.ALIGNMENT_FAULTS),
    "emulation-faults": (TYPE_SOFTWARE, SwId.EMULATION_FAULTS),
    "cgroup-switches": (TYPE_SOFTWARE, SwId.CGROUP_SWITCHES),
    "cpu-cycles": (TYPE_HARDWARE, HwId.CPU_CYCLES),
    "instructions": (TYPE_HARDWARE, HwId.INSTRUCTIONS),
    "cache-references": (TYPE_HARDWARE, HwId.CACHE_REFERENCES),
    "cache-misses": (TYPE_HARDWARE, HwId.CACHE_MISSES),
    "branch-instructions": (TYPE_HARDWARE, HwId.BRANCH_INSTRUCTIONS),
    "branch-misses": (TYPE_HARDWARE, HwId.BRANCH_MISSES),
    "bus-cycles": (TYPE_HARDWARE, HwId.BUS_CYCLES),
    "stalled-cycles-frontend": (TYPE_HARDWARE, HwId.STALLED_CYCLES_FRONTEND),
    "stalled-cycles-backend": (TYPE_HARDWARE, HwId.STALLED_CYCLES_BACKEND),
    "ref-cycles": (TYPE_HARDWARE, HwId.REF_CPU_CYCLES),
}
_EVENT_NAME = {event: name for name, event in EVENT_BY_NAME.items()}
TYPE_MAX = 6  # PERF_TYPE_MAX: types from here on are PMUs the kernel numbered at boot
PMU_DIR = "/sys/bus/event_source/devices"


def _named_pmu_types() -> set[int]:
    types: set[int] = set()
    try:
        names = os.listdir(PMU_DIR)
    except OSError:
        return types
    for name in names:
        try:
            with open(f"{PMU_DIR}/{name}/type") as f:
                types.add(int(f.read()))
        except (OSError, ValueError):
            continue
    return types


def event_name(type_: int, config: int) -> str | None:
    """perf(1)'s name of the event a kernel reports (a perf-event link's ``type`` and ``config``).

    Kernels since 6.x run cpu-clock and task-clock on PMUs of their own, numbered at
    boot and absent from sysfs, and report that PMU's type with the software config:
    an unnamed type from TYPE_MAX on with one of those two configs is that clock.
    """
    name = _EVENT_NAME.get((type_, config))
    if name is None and type_ >= TYPE_MAX and config in (SwId.CPU_CLOCK, SwId.TASK_CLOCK):
        if type_ not in _named_pmu_types():
            name = _EVENT_NAME[(TYPE_SOFTWARE, config)]
    return name


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
FLAG_FREQ = 1 << 10  # sample_period holds a frequency (Hz) the kernel keeps the period at

PERF_FLAG_FD_CLOEXEC = 1 << 3  # perf_event_open's flags argument

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


def _cpu_list(path: str) -> list[int]:
    """The CPUs of a sysfs CPU list such as ``0-3,6``."""
    with open(path) as f:
        text = f.read().strip()
    cpus: list[int] = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def possible_cpus() -> int:
    """libbpf_num_possible_cpus(): the count of CPUs in /sys/devices/system/cpu/possible."""
    return len(_cpu_list("/sys/devices/system/cpu/possible"))


def online_cpus() -> list[int]:
    """The CPUs in /sys/devices/system/cpu/online."""
    return _cpu_list("/sys/devices/system/cpu/online")
