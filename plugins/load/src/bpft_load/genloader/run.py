"""Running a generated loader, as libbpf 1.1's ``bpf_load_and_run()`` (skel_internal.h)
does for bpftool's ``-L``: the blob becomes the one value of an array map
(``__loader.map``), the program is loaded as a sleepable ``BPF_PROG_TYPE_SYSCALL``
program (``__loader.prog``) whose fd_array is that map, and ``BPF_PROG_TEST_RUN``
runs it once with a context (``struct bpf_loader_ctx`` and its descriptors).

The loader opens its maps and programs in this process; their fds come back in the
context. bpftool leaves them to its exit; :class:`LoaderRun` closes them, so that
nothing stays loaded unless the loader pinned it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from bpft.kernel import syscall as sc
from bpft.kernel.uapi import MapType, ProgType

from .generate import GeneratedLoader
from .layout import INSN, LoaderCtx, ProgLoadAttr, TestRunAttr, map_desc_off, prog_desc_off

LOADER_LICENSE = b"Dual BSD/GPL\0"
LOADER_PROG_NAME = b"__loader.prog"
LOADER_MAP_NAME = "__loader.map"
BPF_F_SLEEPABLE = 1 << 4
DESCS = 64  # bpftool's try_loader(): room in the context for 64 map or program descriptors
VERIFIER_LOG_SIZE = (1 << 24) - 1  # bpftool's try_loader() log buffer


class LoaderRun:
    """What a run gave: ``err`` (0, or a negative errno as libbpf returns it), ``errstr``
    (libbpf's word for the failing step, or None), the verifier ``log`` (None unless
    one was asked for), and the fds the loader made (closed by :meth:`close`)."""

    __slots__ = ("err", "errstr", "log", "map_fds", "prog_fds")

    def __init__(self, err: int, errstr: str | None, log: str | None, map_fds: list[int], prog_fds: list[int]):
        self.err, self.errstr, self.log = err, errstr, log
        self.map_fds, self.prog_fds = map_fds, prog_fds

    def close(self) -> None:
        for fd in self.map_fds + self.prog_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.map_fds, self.prog_fds = [], []

    def __enter__(self) -> LoaderRun:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _buffer(data: bytes | bytearray, size: int | None = None):
    return ctypes.create_string_buffer(bytes(data), size if size is not None else max(len(data), 1))


def load_and_run(loader: GeneratedLoader, *, log_level: int = 0) -> LoaderRun:
    """Load and run ``loader``; with ``log_level`` (bpftool -d: 1|2|4) the kernel writes
    the verifier logs into one buffer: the loader's, then each program's it loads."""
    ctx_size = LoaderCtx.SIZEOF + DESCS * max(LoaderCtx.MAP_DESC_SIZEOF, LoaderCtx.PROG_DESC_SIZEOF)
    ctx = ctypes.create_string_buffer(ctx_size)
    log_buf = ctypes.create_string_buffer(VERIFIER_LOG_SIZE) if log_level else None
    struct.pack_into("<I", ctx, LoaderCtx.SZ, ctx_size)
    if log_buf is not None:
        struct.pack_into("<IIQ", ctx, LoaderCtx.LOG_LEVEL, log_level, VERIFIER_LOG_SIZE, ctypes.addressof(log_buf))
    err, errstr = _load_and_run(loader, ctx, ctx_size, log_level, log_buf)
    map_fds = [struct.unpack_from("<i", ctx, map_desc_off(i) + LoaderCtx.MAP_DESC_FD)[0] for i in range(loader.nr_maps)]
    prog_fds = [
        struct.unpack_from("<i", ctx, prog_desc_off(loader.nr_maps, i) + LoaderCtx.PROG_DESC_FD)[0]
        for i in range(loader.nr_progs)
    ]
    log = log_buf.value.decode("utf-8", "replace") if log_buf is not None else None
    return LoaderRun(err, errstr, log, [fd for fd in map_fds if fd > 0], [fd for fd in prog_fds if fd > 0])


def _load_and_run(loader: GeneratedLoader, ctx, ctx_size: int, log_level: int, log_buf) -> tuple[int, str | None]:
    map_fd = prog_fd = -1
    try:
        try:
            map_fd = sc.map_create(MapType.ARRAY, 4, len(loader.data), 1, name=LOADER_MAP_NAME)
        except OSError as e:
            return -(e.errno or errno.EINVAL), "failed to create loader map"
        try:
            sc.map_update_elem(map_fd, bytes(4), loader.data)
        except OSError as e:
            return -(e.errno or errno.EINVAL), "failed to update loader map"
        insns = _buffer(loader.insns)
        license = _buffer(LOADER_LICENSE)
        fd_array = (ctypes.c_int * 1)(map_fd)
        attr = bytearray(ProgLoadAttr.LOADER_SIZEOF)
        struct.pack_into(
            "<IIQQ",
            attr,
            0,
            ProgType.SYSCALL,
            len(loader.insns) // INSN,
            ctypes.addressof(insns),
            ctypes.addressof(license),
        )
        if log_buf is not None:
            struct.pack_into(
                "<IIQ", attr, ProgLoadAttr.LOG_LEVEL, log_level, VERIFIER_LOG_SIZE, ctypes.addressof(log_buf)
            )
        struct.pack_into("<I16s", attr, ProgLoadAttr.PROG_FLAGS, BPF_F_SLEEPABLE, LOADER_PROG_NAME)
        struct.pack_into("<Q", attr, ProgLoadAttr.FD_ARRAY, ctypes.addressof(fd_array))
        try:
            prog_fd = sc.bpf(sc.PROG_LOAD, (ctypes.c_char * len(attr)).from_buffer(attr))
        except OSError as e:
            return -(e.errno or errno.EINVAL), "failed to load loader prog"
        run = bytearray(TestRunAttr.SIZEOF)
        struct.pack_into("<I", run, TestRunAttr.PROG_FD, prog_fd)
        struct.pack_into("<I", run, TestRunAttr.CTX_SIZE_IN, ctx_size)
        struct.pack_into("<Q", run, TestRunAttr.CTX_IN, ctypes.addressof(ctx))
        try:
            sc.bpf(sc.PROG_TEST_RUN, (ctypes.c_char * len(run)).from_buffer(run))
        except OSError as e:
            return -(e.errno or errno.EINVAL), "failed to execute loader prog"
        retval = struct.unpack_from("<i", run, TestRunAttr.RETVAL)[0]
        if retval < 0:
            return retval, "failed to execute loader prog"
        return 0, None
    finally:
        for fd in (map_fd, prog_fd):
            if fd >= 0:
                os.close(fd)
