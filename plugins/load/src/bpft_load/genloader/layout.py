"""The facts a generated loader is built from: the kernel's ``union bpf_attr`` field
offsets for the commands it issues, the helpers it calls, the context that runs it
(libbpf's ``struct bpf_loader_ctx`` and its map and program descriptors) and the
layout of its stack.

Enumerations are IntEnums; layouts (field offsets and sizes) are classes of named
constants, which cost nothing to import. The numbers are the kernel's UAPI and libbpf 1.1's (``skel_internal.h``,
``gen_loader.c``); a loader generated with them is the one libbpf generates.
"""

from __future__ import annotations

from enum import IntEnum


class Reg(IntEnum):
    """BPF registers, by the roles the loader program gives them."""

    R0 = 0
    R1 = 1
    R2 = 2
    R3 = 3
    R4 = 4
    CTX = 6  # R6: the run's context (struct bpf_loader_ctx)
    RESULT = 7  # R7: the last sys_bpf()'s result (an fd or -errno)
    INSN = 8  # R8: the instruction a ksym relocation patches
    R9 = 9  # R9: scratch (closed fds, kernel addresses, BTF object fds)
    FP = 10  # R10: the frame pointer


class Helper(IntEnum):
    """The BPF helpers a loader program calls (enum bpf_func_id)."""

    TRACE_PRINTK = 6
    PROBE_READ_KERNEL = 113
    COPY_FROM_USER = 148
    SYS_BPF = 166
    BTF_FIND_BY_NAME_KIND = 167
    SYS_CLOSE = 168
    KALLSYMS_LOOKUP_NAME = 179


class Cmd(IntEnum):
    """The bpf() commands a loader program issues (enum bpf_cmd)."""

    MAP_CREATE = 0
    MAP_UPDATE_ELEM = 2
    PROG_LOAD = 5
    BTF_LOAD = 18
    MAP_FREEZE = 22


class BtfKind(IntEnum):
    """The BTF kinds a loader looks kernel symbols up as."""

    TYPEDEF = 8
    FUNC = 12
    VAR = 14


# --- limits (gen_loader.c)
MAX_USED_MAPS = 64
MAX_USED_PROGS = 32
MAX_KFUNC_DESCS = 256
MAX_FD_ARRAY_SZ = MAX_USED_MAPS + MAX_KFUNC_DESCS
ATTACH_TARGET_SIZE = 128  # bpf_gen.attach_target[]: the "prefix+name" of a BTF attach target
INSN = 8


class BtfLoadAttr:
    """``union bpf_attr`` for BPF_BTF_LOAD: field offsets, and the size libbpf 1.1 passes."""

    BTF = 0
    LOG_BUF = 8
    SIZE = 16
    LOG_SIZE = 20
    LOG_LEVEL = 24
    SIZEOF = 28  # offsetofend(btf_log_level)


class MapCreateAttr:
    """``union bpf_attr`` for BPF_MAP_CREATE."""

    MAP_TYPE = 0
    KEY_SIZE = 4
    VALUE_SIZE = 8
    MAX_ENTRIES = 12
    MAP_FLAGS = 16
    INNER_MAP_FD = 20
    NUMA_NODE = 24
    MAP_NAME = 28
    MAP_IFINDEX = 44
    BTF_FD = 48
    BTF_KEY_TYPE_ID = 52
    BTF_VALUE_TYPE_ID = 56
    BTF_VMLINUX_VALUE_TYPE_ID = 60
    MAP_EXTRA = 64
    SIZEOF = 72  # offsetofend(map_extra)


class MapElemAttr:
    """``union bpf_attr`` for BPF_MAP_UPDATE_ELEM (and BPF_MAP_FREEZE, which has only the fd)."""

    MAP_FD = 0
    KEY = 8
    VALUE = 16
    FLAGS = 24
    SIZEOF = 32  # offsetofend(flags)
    FREEZE_SIZEOF = 4  # offsetofend(map_fd)


class ProgLoadAttr:
    """``union bpf_attr`` for BPF_PROG_LOAD."""

    PROG_TYPE = 0
    INSN_CNT = 4
    INSNS = 8
    LICENSE = 16
    LOG_LEVEL = 24
    LOG_SIZE = 28
    LOG_BUF = 32
    KERN_VERSION = 40
    PROG_FLAGS = 44
    PROG_NAME = 48
    PROG_IFINDEX = 64
    EXPECTED_ATTACH_TYPE = 68
    PROG_BTF_FD = 72
    FUNC_INFO_REC_SIZE = 76
    FUNC_INFO = 80
    FUNC_INFO_CNT = 88
    LINE_INFO_REC_SIZE = 92
    LINE_INFO = 96
    LINE_INFO_CNT = 104
    ATTACH_BTF_ID = 108
    ATTACH_BTF_OBJ_FD = 112
    CORE_RELO_CNT = 116
    FD_ARRAY = 120
    CORE_RELOS = 128
    CORE_RELO_REC_SIZE = 136
    SIZEOF = 140  # offsetofend(core_relo_rec_size)
    LOADER_SIZEOF = 128  # offsetofend(fd_array): what skel_internal.h loads the loader with


CORE_RELO_SIZE = 16  # struct bpf_core_relo: insn_off, type_id, access_str_off, kind


class TestRunAttr:
    """``union bpf_attr`` for BPF_PROG_TEST_RUN (the ``test`` member)."""

    PROG_FD = 0
    RETVAL = 4
    CTX_SIZE_IN = 40
    CTX_IN = 48
    SIZEOF = 80  # offsetofend(test): skel_internal.h's size (through batch_size)


class LoaderCtx:
    """libbpf's ``struct bpf_loader_ctx``, then ``struct bpf_map_desc`` per map and
    ``struct bpf_prog_desc`` per program: offsets and sizes."""

    SZ = 0
    FLAGS = 4
    LOG_LEVEL = 8
    LOG_SIZE = 12
    LOG_BUF = 16
    SIZEOF = 24
    MAP_DESC_FD = 0  # in a bpf_map_desc: the created map's fd (the loader's output)
    MAP_DESC_MAX_ENTRIES = 4  # input: max_entries to use instead of the object's, if not 0
    MAP_DESC_INITIAL_VALUE = 8  # input: a pointer to the map's initial value, if not 0
    MAP_DESC_SIZEOF = 16
    PROG_DESC_FD = 0  # in a bpf_prog_desc: the loaded program's fd
    PROG_DESC_SIZEOF = 4


BPF_SKEL_KERNEL = 1  # bpf_loader_ctx.flags: initial values are kernel pointers


def map_desc_off(map_idx: int) -> int:
    """Where map ``map_idx``'s descriptor starts in the context."""
    return LoaderCtx.SIZEOF + LoaderCtx.MAP_DESC_SIZEOF * map_idx


def prog_desc_off(nr_maps: int, prog_idx: int) -> int:
    """Where program ``prog_idx``'s descriptor starts, after ``nr_maps`` map descriptors."""
    return LoaderCtx.SIZEOF + LoaderCtx.MAP_DESC_SIZEOF * nr_maps + LoaderCtx.PROG_DESC_SIZEOF * prog_idx


# --- the loader's stack (struct loader_stack): the BTF fd, the inner map fd of the
# map-in-map being created, and each loaded program's fd; addressed from R10 down
STACK_SIZE = 4 + 4 + 4 * MAX_USED_PROGS
STACK_BTF_FD = -STACK_SIZE
STACK_INNER_MAP_FD = -STACK_SIZE + 4


def stack_prog_fd(prog_idx: int) -> int:
    return -STACK_SIZE + 8 + 4 * prog_idx
