"""What the running kernel supports, probed once per process (libbpf 1.1's kernel_supports).

Each :class:`Feature` is probed the way libbpf probes it: a tiny BTF blob using the
kind, a map with the flag, a program using the instruction. The answer is cached
for the process. The kernel release and the thing each feature
is, for messages and for tests that skip ("requires 5.13: BTF_KIND_FLOAT"):
each :class:`Feature`'s value.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Callable
from enum import Enum

from bpft import btf as B
from bpft import insn
from bpft.kernel import syscall as sc
from bpft.kernel.memlock import memcg_accounting

PROG_TYPE_SOCKET_FILTER = 1
MAP_TYPE_ARRAY = 2


class Feature(Enum):
    """A kernel feature: its value is the first release with it, and what it is."""

    PROG_NAME = ("4.15", "program names")
    GLOBAL_DATA = ("5.2", "global data (BPF_PSEUDO_MAP_VALUE)")
    ARRAY_MMAP = ("5.5", "mmap-able arrays (BPF_F_MMAPABLE)")
    BTF = ("4.18", "BTF")
    BTF_FUNC = ("5.0", "BTF_KIND_FUNC")
    BTF_FUNC_GLOBAL = ("5.6", "global BTF functions (BTF_FUNC_GLOBAL)")
    BTF_DATASEC = ("5.2", "BTF_KIND_VAR and BTF_KIND_DATASEC")
    BTF_FLOAT = ("5.13", "BTF_KIND_FLOAT")
    BTF_DECL_TAG = ("5.16", "BTF_KIND_DECL_TAG")
    BTF_TYPE_TAG = ("5.17", "BTF_KIND_TYPE_TAG")
    BTF_ENUM64 = ("6.0", "BTF_KIND_ENUM64")
    MEMCG_ACCOUNT = ("5.11", "memcg-based accounting of BPF memory")

    @property
    def release(self) -> str:
        return self.value[0]

    @property
    def what(self) -> str:
        return self.value[1]


def requirement(feature: Feature) -> str:
    """``requires 5.13: BTF_KIND_FLOAT``."""
    return f"requires {feature.release}: {feature.what}"


# --- BTF blobs --------------------------------------------------------------------------


def _info(kind: int, vlen: int = 0, kflag: int = 0) -> int:
    return (kflag << 31) | (kind << 24) | vlen


def _int(size: int = 4) -> bytes:  # a signed int named by string offset 1
    return struct.pack("<IIII", 1, _info(B.INT), size, (B.INT_SIGNED << 24) | size * 8)


def _blob(types: bytes, strings: bytes) -> bytes:
    hdr = struct.pack("<HBBIIIII", B.MAGIC, 1, 0, 24, 0, len(types), len(types), len(strings))
    return hdr + types + strings


_STRS = b"\0int\0x\0.data\0tag\0"  # offsets: int 1, x 5, .data 7, tag 13


def _btf_blob(feature: Feature) -> bytes:
    """A BTF blob that loads exactly when the kernel knows ``feature``."""
    if feature is Feature.BTF:
        types = _int()
    elif feature in (Feature.BTF_FUNC, Feature.BTF_FUNC_GLOBAL):
        linkage = 1 if feature is Feature.BTF_FUNC_GLOBAL else 0
        types = (
            _int()
            + struct.pack("<III", 0, _info(B.FUNC_PROTO, 1), 1)  # [2] int (int x)
            + struct.pack("<II", 5, 1)
            + struct.pack("<III", 5, _info(B.FUNC, linkage), 2)  # [3] x
        )
    elif feature is Feature.BTF_DATASEC:
        types = (
            _int()
            + struct.pack("<IIII", 5, _info(B.VAR), 1, 1)  # [2] static int x (global allocated)
            + struct.pack("<III", 7, _info(B.DATASEC, 1), 4)  # [3] .data
            + struct.pack("<III", 2, 0, 4)
        )
    elif feature is Feature.BTF_FLOAT:
        types = struct.pack("<III", 1, _info(B.FLOAT), 4)
    elif feature is Feature.BTF_DECL_TAG:
        types = (
            _int()
            + struct.pack("<IIII", 5, _info(B.VAR), 1, 1)  # [2] x
            + struct.pack("<IIIi", 13, _info(B.DECL_TAG), 2, -1)  # [3] tag on x
        )
    elif feature is Feature.BTF_TYPE_TAG:
        types = (
            _int()
            + struct.pack("<III", 13, _info(B.TYPE_TAG), 1)  # [2] tag -> int
            + struct.pack("<III", 0, _info(B.PTR), 2)  # [3] ptr -> [2]
        )
    elif feature is Feature.BTF_ENUM64:
        types = struct.pack("<III", 5, _info(B.ENUM64, 1), 8) + struct.pack("<III", 1, 0, 1)
    else:
        raise ValueError(feature)
    return _blob(types, _STRS)


def _loads(blob: bytes) -> bool:
    try:
        fd = sc.btf_load(blob)
    except OSError:
        return False
    os.close(fd)
    return True


def _prog_loads(code: bytes, name: str = "") -> bool:
    try:
        fd = sc.prog_load_simple(PROG_TYPE_SOCKET_FILTER, code, name=name)
    except OSError:
        return False
    os.close(fd)
    return True


def _probe_prog_name() -> bool:
    return _prog_loads(insn.assemble(insn.mov64_imm(0, 0), insn.exit_insn()), name="test")


def _probe_global_data() -> bool:
    try:
        map_fd = sc.map_create(MAP_TYPE_ARRAY, 4, 32, 1)
    except OSError:
        return False
    try:
        code = insn.assemble(
            insn.ld_map_value(1, map_fd, 0), insn.st_mem(insn.BPF_DW, 1, 0, 42), insn.mov64_imm(0, 0), insn.exit_insn()
        )
        return _prog_loads(code)
    finally:
        os.close(map_fd)


def _probe_array_mmap() -> bool:
    try:
        fd = sc.map_create(MAP_TYPE_ARRAY, 4, 4, 1, flags=sc.F_MMAPABLE)
    except OSError:
        return False
    os.close(fd)
    return True


_PROBES: dict[Feature, Callable[[], bool]] = {
    Feature.PROG_NAME: _probe_prog_name,
    Feature.GLOBAL_DATA: _probe_global_data,
    Feature.ARRAY_MMAP: _probe_array_mmap,
    Feature.MEMCG_ACCOUNT: memcg_accounting,
}


@functools.cache
def supports(feature: Feature) -> bool:
    """Whether the running kernel has ``feature`` (probed on first use, then cached)."""
    probe = _PROBES.get(feature)
    if probe is not None:
        return probe()
    return _loads(_btf_blob(feature))


# --- what an old kernel lacks, named -------------------------------------------------------

# program types newer than 5.0, by the release that added them
PROG_TYPE_SINCE = {
    "cgroup_sysctl": "5.2",
    "raw_tracepoint_writable": "5.2",
    "cgroup_sockopt": "5.3",
    "tracing": "5.5",
    "struct_ops": "5.6",
    "ext": "5.6",
    "lsm": "5.7",
    "sk_lookup": "5.9",
    "syscall": "5.14",
}


def _release() -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    except ValueError:
        return (0,)


def missing_prog_type(prog_type: int) -> str | None:
    """Why the running kernel refuses programs of ``prog_type`` outright, if it is older than
    the release that added the type: ``program type syscall needs Linux 5.14; this is 5.10.0-46-amd64``.

    libbpf 1.1 only reports the kernel's EINVAL (with an empty verifier log); this names it.
    """
    from bpft.kernel.uapi import PROG_TYPE_NAMES

    name = PROG_TYPE_NAMES[prog_type] if 0 <= prog_type < len(PROG_TYPE_NAMES) else None
    since = PROG_TYPE_SINCE.get(name or "")
    if since is None or _release() >= tuple(int(x) for x in since.split(".")):
        return None
    return f"program type {name} needs Linux {since}; this kernel is {os.uname().release}"
