"""The ``perf_event`` target: a perf_event program on a sampling perf event, through a
perf-event link (``BPF_LINK_CREATE`` with ``BPF_PERF_EVENT``).

::

    perf_event EVENT [{ freq HZ | period N }] [cpu CPU] [pid PID]

EVENT is perf(1)'s name of a generic software or hardware event
(:data:`bpft.kernel.perf.EVENT_BY_NAME`). The program runs on each sample:
``freq HZ`` times a second (the kernel keeps the period there; 99 Hz when
neither is given), or every ``period N`` events (nanoseconds for the clocks).

A perf event counts on one CPU, or for one process, so each link is on one
event: ``cpu CPU`` makes one link on that CPU (every process), ``pid PID`` one
link following that thread on any CPU, both together that thread on that CPU.
With neither, bpft makes one link per online CPU (every process on each), and
``link DIR`` then makes the directory DIR on bpffs holding one pin per CPU
(``cpu0``, ``cpu1``...). ``detach`` takes the event alone and detaches every
link of the program on it: the kernel does not report a perf event's CPU,
process or rate.
"""

from __future__ import annotations

import errno
import re

from ..errors import BpftError
from ..grammar import Args
from ..kernel import perf
from ..kernel.links import PerfEventType
from .base import PROG_TYPE, Attached, Target, perf_event_is, perf_link, refused

DEFAULT_FREQ = 99
OPTIONS = ("freq", "period", "cpu", "pid")
_PART_PIN = re.compile(r"cpu[0-9]+")


def _number(text: str, what: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        value = -1
    if value < 0 or (value == 0 and what != "CPU"):
        raise BpftError(f"can't parse '{text}' as {what}")
    return value


class PerfEvent(Target):
    prog_types = (PROG_TYPE["perf_event"],)

    def __init__(
        self,
        event: str,
        freq: int | None = None,
        period: int | None = None,
        cpu: int | None = None,
        pid: int | None = None,
    ):
        if event not in perf.EVENT_BY_NAME:
            raise BpftError(f"unknown perf event '{event}': expected one of {', '.join(perf.EVENT_BY_NAME)}")
        if freq is not None and period is not None:
            raise BpftError("perf_event takes 'freq' or 'period', not both")
        self.event, self.freq, self.period, self.cpu, self.pid = event, freq, period, cpu, pid
        self.type, self.config = perf.EVENT_BY_NAME[event]

    @classmethod
    def parse(cls, args: Args) -> PerfEvent:
        """``EVENT [OPTION VALUE]...`` at the cursor (after ``perf_event``), each option once."""
        event = args.next()
        given: dict[str, int] = {}
        while args.current in OPTIONS:
            option = args.next()
            if option in given:
                raise BpftError(f"perf_event: '{option}' given twice")
            if args.current is None:
                raise BpftError(f"perf_event: '{option}' needs a value")
            what = {"freq": "a frequency (Hz)", "period": "a period", "cpu": "CPU", "pid": "a process id"}[option]
            given[option] = _number(args.next(), what)
        return cls(event, **given)

    def describe(self) -> str:
        where = "".join(
            (
                f" on CPU {self.cpu}" if self.cpu is not None else "",
                f" of process {self.pid}" if self.pid is not None else "",
            )
        )
        return f"perf_event {self.event}{where}"

    def parts(self):
        if self.cpu is not None or self.pid is not None:
            return [(None, self)]
        try:
            cpus = perf.online_cpus()
        except (OSError, ValueError) as e:
            raise BpftError(f"can't read the online CPUs: {e}") from None
        return [(f"cpu{cpu}", PerfEvent(self.event, self.freq, self.period, cpu)) for cpu in cpus]

    def is_part_pin(self, name):
        return _PART_PIN.fullmatch(name) is not None

    def check_detach(self):
        if (self.freq, self.period, self.cpu, self.pid) != (None, None, None, None):
            raise BpftError(
                "detach takes 'perf_event EVENT' alone, and detaches the program from that event on every "
                "CPU and process: the kernel does not report a perf event's CPU, process or rate"
            )

    def attach(self, prog_fd, info):
        attr = perf.make_attr(self.type, self.config)
        if self.period is not None:
            attr.sample_period = self.period
        else:
            attr.flags |= perf.FLAG_FREQ
            attr.sample_period = self.freq or DEFAULT_FREQ  # sample_freq shares the field
        attr.wakeup_events = 1
        pid = -1 if self.pid is None else self.pid
        cpu = -1 if self.cpu is None else self.cpu
        try:
            event_fd = perf.perf_event_open(attr, pid=pid, cpu=cpu, flags=perf.PERF_FLAG_FD_CLOEXEC)
        except OSError as e:
            raise self._refused(e) from None
        return Attached(perf_link(prog_fd, event_fd, self.describe()))

    def _refused(self, e: OSError) -> BpftError:
        """The user's words for perf_event_open's errno."""
        if e.errno == errno.ESRCH:
            return BpftError(f"no such process: {self.pid}")
        if e.errno in (errno.ENODEV, errno.EINVAL) and self.cpu is not None and not _online(self.cpu):
            return BpftError(f"no such CPU online: {self.cpu}")
        if e.errno in (errno.ENOENT, errno.EOPNOTSUPP) and self.type == perf.TYPE_HARDWARE:
            return BpftError(f"this machine has no hardware PMU counting {self.event}: it cannot sample it")
        if e.errno == errno.EINVAL and self.period is None:
            limit = _max_sample_rate()
            if limit is not None and (self.freq or DEFAULT_FREQ) > limit:
                return BpftError(
                    f"freq {self.freq} is above the kernel's limit of {limit} Hz (kernel.perf_event_max_sample_rate)"
                )
        return refused(e, self.describe())

    def owns(self, link):
        if not perf_event_is(link, PerfEventType.EVENT):
            return False
        if link.fields.get("event_type") == PerfEventType.UNSPEC:
            return True  # a kernel before 6.6 does not say which event (perf_event_is)
        return perf.event_name(link.fields["type"], link.fields["config"]) == self.event


def _online(cpu: int) -> bool:
    try:
        return cpu in perf.online_cpus()
    except (OSError, ValueError):
        return True  # cannot tell: the kernel's own words then


def _max_sample_rate() -> int | None:
    try:
        with open("/proc/sys/kernel/perf_event_max_sample_rate") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None
