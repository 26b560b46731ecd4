"""Tracing targets: kprobes, uprobes, tracepoints (perf-event links), raw tracepoints, and
the program's own BTF target (``tracing``, ``lsm``, ``iter``)."""

from __future__ import annotations

import errno
import os

from ..errors import BpftError
from ..kernel import info as kinfo
from ..kernel import probes
from ..kernel import syscall as sc
from ..kernel.links import PerfEventType
from ..kernel.uapi import AttachType, LinkType
from .base import PROG_TYPE, Attached, Target, perf_event_is, perf_link, refused


def _probe_link(prog_fd: int, what: str, open_event, *where) -> Attached:
    """A perf-event link on the event ``open_event(*where)`` opens."""
    try:
        event_fd = open_event(*where)
    except probes.ProbeError as e:
        raise BpftError(e.message) from None
    return Attached(perf_link(prog_fd, event_fd, what))


def _split_offset(text: str) -> tuple[str, int]:
    name, plus, off = text.partition("+")
    if not plus:
        return name, 0
    try:
        return name, int(off, 0)
    except ValueError:
        raise BpftError(f"can't parse '{off}' as an offset in '{text}'") from None


class Kprobe(Target):
    prog_types = (PROG_TYPE["kprobe"],)

    def __init__(self, spec: str, retprobe: bool):
        self.spec, self.retprobe = spec, retprobe
        self.func, self.offset = _split_offset(spec)
        if not self.func:
            raise BpftError(f"no function in '{spec}'")
        if retprobe and self.offset:
            raise BpftError(f"kretprobe takes FUNC alone, not '{spec}': a return probe is set at the function's entry")

    @property
    def kind(self) -> str:
        return "kretprobe" if self.retprobe else "kprobe"

    def describe(self) -> str:
        return f"{self.kind} {self.spec}"

    def attach(self, prog_fd, info):
        return _probe_link(prog_fd, self.describe(), probes.open_kprobe, self.func, self.offset, self.retprobe)

    def owns(self, link):
        want = PerfEventType.KRETPROBE if self.retprobe else PerfEventType.KPROBE
        return perf_event_is(link, want, func_name=self.func)


class Uprobe(Target):
    prog_types = (PROG_TYPE["kprobe"],)

    def __init__(self, spec: str, retprobe: bool):
        self.spec, self.retprobe = spec, retprobe
        path, colon, symbol = spec.rpartition(":")
        if not colon or not path:
            raise BpftError(f"expected BINARY:SYMBOL[+OFFSET], got: '{spec}'")
        self.path = os.path.realpath(path)
        symbol, extra = _split_offset(symbol)
        if retprobe and extra:
            raise BpftError(
                f"uretprobe takes BINARY:SYMBOL alone, not '{spec}': a return probe is set at the function's entry"
            )
        try:
            self.offset = (probes.symbol_offset(self.path, symbol) if symbol else 0) + extra
        except probes.ProbeError as e:
            raise BpftError(e.message) from None

    def describe(self) -> str:
        return f"{'uretprobe' if self.retprobe else 'uprobe'} {self.spec}"

    def attach(self, prog_fd, info):
        return _probe_link(prog_fd, self.describe(), probes.open_uprobe, self.path, self.offset, self.retprobe)

    def owns(self, link):
        want = PerfEventType.URETPROBE if self.retprobe else PerfEventType.UPROBE
        return perf_event_is(link, want, file_name=self.path, offset=self.offset)


class Tracepoint(Target):
    prog_types = (PROG_TYPE["tracepoint"],)

    def __init__(self, spec: str, nomount: bool = False):
        category, colon, name = spec.partition(":")
        if not colon:
            category, _, name = spec.partition("/")
        self.category, self.name, self.nomount = category, name, nomount

    def describe(self) -> str:
        return f"tracepoint {self.category}:{self.name}"

    def attach(self, prog_fd, info):
        from ..kernel.tracefs import TracefsError, mount_point

        try:
            events = f"{mount_point(self.nomount)}/events"
        except TracefsError as e:
            raise BpftError(str(e)) from None
        return _probe_link(prog_fd, self.describe(), probes.open_tracepoint, events, self.category, self.name)

    def owns(self, link):
        return perf_event_is(link, PerfEventType.TRACEPOINT, tp_name=self.name)


class RawTracepoint(Target):
    prog_types = (PROG_TYPE["raw_tracepoint"], PROG_TYPE["raw_tracepoint_writable"])

    def __init__(self, name: str):
        self.name = name

    def describe(self) -> str:
        return f"raw_tp {self.name}"

    def attach(self, prog_fd, info):
        try:
            return Attached(sc.raw_tracepoint_open(self.name, prog_fd))
        except OSError as e:
            if e.errno == errno.ENOENT:
                raise BpftError(f"no such raw tracepoint: '{self.name}'") from None
            raise refused(e, self.describe()) from None

    def owns(self, link):
        return link.type == LinkType.RAW_TRACEPOINT and link.fields.get("tp_name") == self.name


def btf_target_name(info: kinfo.ProgInfoRec) -> str | None:
    """The kernel function, tracepoint or iterator a program's ``attach_btf_id`` names."""
    if not info.attach_btf_id:
        return None
    from ..btf import BTFError, load_kernel_btf

    try:
        btf = load_kernel_btf(info.attach_btf_obj_id) if info.attach_btf_obj_id else _vmlinux()
        return btf.name(btf.type(info.attach_btf_id).name_off)
    except (OSError, BTFError, IndexError, ValueError):
        return None


def _vmlinux():
    from ..btf import vmlinux

    return vmlinux()


class BtfTarget(Target):
    """``tracing``, ``lsm``, ``iter``: the place is the program's own ``attach_btf_id``."""

    KINDS = {
        "tracing": (PROG_TYPE["tracing"], PROG_TYPE["ext"]),
        "lsm": (PROG_TYPE["lsm"],),
        "iter": (PROG_TYPE["tracing"],),
    }

    def __init__(self, kind: str):
        self.kind = kind
        self.prog_types = self.KINDS[kind]
        self.btf_name: str | None = None

    def describe(self) -> str:
        return self.kind + (f" {self.btf_name}" if self.btf_name else "")

    def check_program(self, info):
        super().check_program(info)
        if not info.attach_btf_id:  # kernels before 5.17 do not report it: the kernel still knows
            return
        self.btf_name = btf_target_name(info)
        is_iter = (self.btf_name or "").startswith("bpf_iter_")
        if is_iter != (self.kind == "iter"):
            raise BpftError(f"program {info.id} attaches to {self.btf_name}: use '{'iter' if is_iter else 'tracing'}'")

    def attach(self, prog_fd, info):
        try:
            if self.kind == "iter":
                return Attached(sc.link_create(prog_fd, 0, AttachType.TRACE_ITER))
            return Attached(sc.raw_tracepoint_open(None, prog_fd))
        except OSError as e:
            raise refused(e, self.describe()) from None

    def owns(self, link):
        if self.kind == "iter":
            return link.type == LinkType.ITER
        return link.type in (LinkType.TRACING, LinkType.RAW_TRACEPOINT)
