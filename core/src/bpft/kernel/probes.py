"""Perf events for BPF programs: tracepoints, kprobes and uprobes.

Each ``open_*`` returns a perf event fd ready for a perf-event link
(``BPF_LINK_CREATE`` with ``BPF_PERF_EVENT``). kprobes and uprobes go through
their PMUs (``/sys/bus/event_source/devices/{kprobe,uprobe}``), tracepoints
through their tracefs ids, as libbpf does; no legacy tracefs probe files are
written. Failures are :class:`ProbeError`, whose message names what was not
found or refused.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from . import perf

PMU_DIR = perf.PMU_DIR


class ProbeError(Exception):
    """A probe could not be opened; ``message`` says why, for a user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _open(attr: perf.PerfEventAttr, what: str, missing: str) -> int:
    """perf_event_open on all CPUs' shared event (pid -1, cpu 0: a BPF program runs on every CPU)."""
    try:
        return perf.perf_event_open(attr, pid=-1, cpu=0, flags=perf.PERF_FLAG_FD_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.EINVAL, errno.EADDRNOTAVAIL):
            raise ProbeError(missing) from None
        raise ProbeError(f"the kernel refused {what}: {e.strerror}") from None


def _pmu_type(pmu: str) -> int:
    try:
        with open(f"{PMU_DIR}/{pmu}/type") as f:
            return int(f.read())
    except (OSError, ValueError):
        raise ProbeError(f"this kernel has no {pmu} PMU ({PMU_DIR}/{pmu}): it cannot attach {pmu}s") from None


def _retprobe_bit(pmu: str) -> int:
    """The config bit that makes a probe a return probe (format/retprobe says 'config:N')."""
    try:
        with open(f"{PMU_DIR}/{pmu}/format/retprobe") as f:
            return 1 << int(f.read().strip().split(":", 1)[1])
    except (OSError, ValueError, IndexError):
        raise ProbeError(f"this kernel's {pmu} PMU has no return probes") from None


def _probe_attr(pmu: str, name: bytes, offset: int, retprobe: bool):
    """The attr of a kprobe/uprobe event: config1 points at ``name``, config2 is the offset."""
    name_buf = ctypes.create_string_buffer(name)
    attr = perf.make_attr(_pmu_type(pmu), _retprobe_bit(pmu) if retprobe else 0)
    attr.config1 = ctypes.addressof(name_buf)
    attr.config2 = offset
    attr.sample_period = 1
    attr.wakeup_events = 1
    return attr, name_buf


def open_kprobe(func: str, offset: int = 0, retprobe: bool = False) -> int:
    attr, keep = _probe_attr("kprobe", func.encode(), offset, retprobe)
    kind = "kretprobe" if retprobe else "kprobe"
    fd = _open(attr, f"a {kind} on {func}", f"no such kernel function to probe: '{func}'")
    del keep
    return fd


def open_uprobe(path: str, offset: int, retprobe: bool = False) -> int:
    attr, keep = _probe_attr("uprobe", os.fsencode(path), offset, retprobe)
    kind = "uretprobe" if retprobe else "uprobe"
    fd = _open(attr, f"a {kind} on {path}+{offset:#x}", f"cannot probe {path} at offset {offset:#x}")
    del keep
    return fd


def tracepoint_id(events_dir: str, category: str, name: str) -> int:
    """A tracepoint's id from tracefs (``events/CATEGORY/NAME/id``)."""
    if "/" in category or "/" in name or not category or not name or category.startswith("."):
        raise ProbeError(f"no such tracepoint: '{category}:{name}'")
    try:
        with open(f"{events_dir}/{category}/{name}/id") as f:
            return int(f.read())
    except (OSError, ValueError):
        raise ProbeError(f"no such tracepoint: '{category}:{name}'") from None


def open_tracepoint(events_dir: str, category: str, name: str) -> int:
    attr = perf.make_attr(perf.TYPE_TRACEPOINT, tracepoint_id(events_dir, category, name))
    attr.sample_period = 1
    attr.wakeup_events = 1
    return _open(attr, f"tracepoint {category}:{name}", f"no such tracepoint: '{category}:{name}'")


# --- uprobe targets: a symbol's file offset ----------------------------------------------

_SHT_SYMTAB, _SHT_DYNSYM = 2, 11
_PT_LOAD = 1
_STT_FUNC, _STT_GNU_IFUNC = 2, 10


def symbol_offset(path: str, symbol: str) -> int:
    """The file offset of function ``symbol`` in the ELF64 little-endian file ``path``.

    The symbol's address is mapped through the PT_LOAD segment holding it, as
    the kernel's uprobe wants (a file offset, not an address).
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ProbeError(f"cannot read {path}: {e.strerror}") from None
    if data[:6] != b"\x7fELF\x02\x01":
        raise ProbeError(f"{path} is not a 64-bit little-endian ELF file")
    try:
        return _symbol_offset(data, symbol, path)
    except struct.error:
        raise ProbeError(f"{path}: malformed ELF") from None


def _symbol_offset(data: bytes, symbol: str, path: str) -> int:
    phoff, shoff = struct.unpack_from("<QQ", data, 0x20)
    phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", data, 0x36)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    want = symbol.encode()
    addr = None
    for _, sh_type, _, _, offset, size, link, _, _, entsize in sections:
        if sh_type not in (_SHT_SYMTAB, _SHT_DYNSYM) or not entsize:
            continue
        strtab = sections[link]
        str_off, str_size = strtab[4], strtab[5]
        for pos in range(offset, offset + size, entsize):
            name_off, info, _, _, value, _ = struct.unpack_from("<IBBHQQ", data, pos)
            if info & 0xF not in (_STT_FUNC, _STT_GNU_IFUNC) or not value or name_off >= str_size:
                continue
            start = str_off + name_off
            if data[start : start + len(want) + 1] == want + b"\0":
                addr = value
                break
        if addr is not None:
            break
    if addr is None:
        raise ProbeError(f"no function '{symbol}' in {path}")
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == _PT_LOAD and p_vaddr <= addr < p_vaddr + p_filesz:
            return addr - p_vaddr + p_offset
    raise ProbeError(f"'{symbol}' in {path} is not in a loaded segment")
