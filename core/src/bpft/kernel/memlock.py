"""RLIMIT_MEMLOCK on kernels that still charge BPF memory to it (before 5.11).

Since 5.11 the kernel charges maps and programs to the memory cgroup; before,
every map and program counted against RLIMIT_MEMLOCK, whose default (64 KiB
before 5.16) is too small for most objects. libbpf 1.x (strict mode, as bpftool
runs it) raises the limit to infinity before it creates anything, but only where
memcg accounting is missing; so do we.

memcg accounting came with the helper ``bpf_ktime_get_coarse_ns`` (5.11): a
program calling it loads exactly where the accounting exists (libbpf's probe).
"""

from __future__ import annotations

import functools
import os
import resource

from .uapi import ProgType

BPF_FUNC_KTIME_GET_COARSE_NS = 160  # enum bpf_func_id


@functools.cache
def memcg_accounting() -> bool:
    """True if the running kernel charges BPF memory to the memory cgroup (5.11+)."""
    from bpft import insn
    from bpft.kernel import syscall as sc

    code = insn.assemble(insn.call_helper(BPF_FUNC_KTIME_GET_COARSE_NS), insn.mov64_imm(0, 0), insn.exit_insn())
    try:
        fd = sc.prog_load_simple(ProgType.SOCKET_FILTER, code)
    except OSError:
        return False
    os.close(fd)
    return True


_bumped: list[bool] = []  # [True] once raised


def bump_memlock_rlimit() -> None:
    """Raise RLIMIT_MEMLOCK to infinity once per process, where the kernel needs it."""
    if _bumped or memcg_accounting():
        return
    _bumped.append(True)
    try:
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (OSError, ValueError):
        pass  # not permitted: the load says EPERM, with libbpf's hint about 'ulimit -l'
