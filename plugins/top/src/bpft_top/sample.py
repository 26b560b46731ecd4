"""One reading of every program's counters: the phase that talks to the kernel.

A :class:`Sample` is what the kernel said at one moment: each program's type,
name, run count and run time, and when the reading began. Every program is
read with the listing loop of ``prog show`` (:func:`bpft.progs.render_prog_infos`:
GET_FD_BY_ID, OBJ_GET_INFO_BY_FD, close), or, for ``top PROG``, through the fds
the handle resolved to, which the session holds.
"""

from __future__ import annotations

import os
import time
from typing import NamedTuple

from bpft.errors import BpftError
from bpft.kernel import info as kinfo
from bpft.kernel import uapi
from bpft.progs import full_name, render_prog_infos

# positions in bpft.kernel.info.LIST_FIELDS
_F = {name: i for i, name in enumerate(kinfo.LIST_FIELDS)}
_TYPE, _ID, _NAME, _LOAD_TIME = _F["type"], _F["id"], _F["name"], _F["load_time"]
_RUN_TIME, _RUN_CNT = _F["run_time_ns"], _F["run_cnt"]
_NAME_SHOWN = kinfo.BPF_OBJ_NAME_LEN - 1  # a name this long may be cut: full_name() looks further


class ProgCounters(NamedTuple):
    """One program as one sample saw it. ``load_time`` is boot-relative ns (CLOCK_BOOTTIME)."""

    id: int
    type: str
    name: str
    run_cnt: int
    run_time_ns: int
    load_time: int


class Sample(NamedTuple):
    """Every program read in one pass. The clocks are taken just before the pass began:
    ``wall`` (seconds since the epoch) is what reports print as the sample's time."""

    monotonic_ns: int
    boottime_ns: int
    wall: float
    progs: dict[int, ProgCounters]


def type_name(prog_type: int) -> str:
    return uapi.prog_type_name(prog_type) or str(prog_type)


class Sampler:
    """Reads samples; keeps what does not change between them (names, type names) by program id.

    ``fds``: sample only these programs (held open by the caller), rather than every one.
    """

    def __init__(self, fds: list[int] | None = None):
        self.fds = fds
        self.names: dict[int, str] = {}
        self.types: dict[int, str] = {}

    def _counters(self, fd: int, info: tuple) -> ProgCounters:
        prog_id = info[_ID]
        name = self.names.get(prog_id)
        if name is None:
            raw = info[_NAME].rstrip(b"\0")
            if len(raw) < _NAME_SHOWN:
                name = raw.decode("ascii", "replace")
            else:
                name = full_name(fd, kinfo.prog_info(fd))
            self.names[prog_id] = name
        ptype = info[_TYPE]
        tname = self.types.get(ptype)
        if tname is None:
            tname = self.types[ptype] = type_name(ptype)
        return ProgCounters(prog_id, tname, name, info[_RUN_CNT], info[_RUN_TIME], info[_LOAD_TIME])

    def sample(self) -> Sample:
        mono = time.monotonic_ns()
        boot = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        wall = time.time()
        found: list[ProgCounters] = []
        if self.fds is None:
            render_prog_infos(self._counters, found)
        else:
            for fd in self.fds:
                try:
                    found.append(self._counters(fd, kinfo.prog_list_info(fd)))
                except OSError as e:
                    raise BpftError(f"can't get prog info: {e.strerror}") from None
        progs = {p.id: p for p in found}
        if len(self.names) > 2 * len(progs) + 1024:  # forget programs long gone
            self.names = {i: n for i, n in self.names.items() if i in progs}
        return Sample(mono, boot, wall, progs)

    def close(self) -> None:
        for fd in self.fds or ():
            os.close(fd)
        self.fds = [] if self.fds is not None else None
