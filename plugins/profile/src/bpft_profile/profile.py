"""``bpft prog profile PROG [duration DURATION] METRICs``.

Hardware metrics work as in bpftool: an fentry and an fexit program (made by
``bpft_profile.progs``, no clang needed) are attached to the target, with one
perf event per CPU per metric in a perf-event array; they accumulate the
per-run deltas, printed at the end (``duration`` seconds, or Ctrl-C) as
bpftool prints them.

When the kernel refuses a step (fentry/fexit are refused on locked-down
kernels; machines without a hardware PMU cannot open the events), the error
names the step, the errno, and what usually causes it.

bpft adds software metrics, ``task_clock`` and ``cpu_clock`` (nanoseconds of the
clock each run spans, per CPU, summed), which take the same path with software
perf events: they work where there is no PMU (virtual machines).

bpft adds a metric bpftool lacks, ``stats``: the run count and run time the
kernel itself accounts (BPF_ENABLE_STATS) over the same window, which needs
neither fentry, nor a PMU, nor the target's BTF. It is labelled as such.
"""

from __future__ import annotations

import errno as _errno
import os
import signal
import struct
import time
from collections.abc import Callable
from enum import IntEnum
from typing import TYPE_CHECKING, NamedTuple

from bpft.api import Context
from bpft.errors import BpftError, UsageError
from bpft.grammar import Args, is_prefix, strtoul
from bpft.kernel import perf

if TYPE_CHECKING:
    from .progs import Maps

MAX_NUM_PROFILE_METRICS = 4
STATS = "stats"


class Metric(NamedTuple):
    name: str
    type: int
    config: int
    ratio_metric: int = 0  # 1-based index of the metric this one is divided by, 0 for none
    ratio_desc: str = ""
    ratio_mul: float = 0.0


class SoftwareEvent(IntEnum):
    """enum perf_sw_ids: the clocks every kernel has, PMU or not."""

    CPU_CLOCK = 0
    TASK_CLOCK = 1


def _cache(cache: int, result: int) -> int:
    return perf.hw_cache_config(cache, perf.HW_CACHE_OP_READ, result)


# bpftool's metrics table, in its order (the order of the output).
METRICS = (
    Metric("cycles", perf.TYPE_HARDWARE, perf.COUNT_HW_CPU_CYCLES),
    Metric("instructions", perf.TYPE_HARDWARE, perf.COUNT_HW_INSTRUCTIONS, 1, "insns per cycle", 1.0),
    Metric("l1d_loads", perf.TYPE_HW_CACHE, _cache(perf.HW_CACHE_L1D, perf.HW_CACHE_RESULT_ACCESS)),
    Metric(
        "llc_misses",
        perf.TYPE_HW_CACHE,
        _cache(perf.HW_CACHE_LL, perf.HW_CACHE_RESULT_MISS),
        2,
        "LLC misses per million insns",
        1e6,
    ),
    Metric(
        "itlb_misses",
        perf.TYPE_HW_CACHE,
        _cache(perf.HW_CACHE_ITLB, perf.HW_CACHE_RESULT_MISS),
        2,
        "itlb misses per million insns",
        1e6,
    ),
    Metric(
        "dtlb_misses",
        perf.TYPE_HW_CACHE,
        _cache(perf.HW_CACHE_DTLB, perf.HW_CACHE_RESULT_MISS),
        2,
        "dtlb misses per million insns",
        1e6,
    ),
    # ours: software clocks (nanoseconds), read by the same fentry/fexit programs; they
    # need no PMU, so the whole path runs on virtual machines too
    Metric("task_clock", perf.TYPE_SOFTWARE, SoftwareEvent.TASK_CLOCK),
    Metric("cpu_clock", perf.TYPE_SOFTWARE, SoftwareEvent.CPU_CLOCK),
)


def perf_attr(metric: Metric) -> perf.PerfEventAttr:
    """The perf_event_attr bpftool opens for ``metric``: kernel-side counting only."""
    return perf.make_attr(metric.type, metric.config, perf.FLAG_EXCLUDE_USER)


class Reading(NamedTuple):
    """struct bpf_perf_event_value."""

    counter: int = 0
    enabled: int = 0
    running: int = 0


# --- arguments ----------------------------------------------------------------------


def parse_metrics(words: list[str]) -> tuple[list[int], bool]:
    """Indexes into METRICS (table order) and whether ``stats`` was asked for."""
    selected: set[int] = set()
    stats = False
    for word in words:
        for i, m in enumerate(METRICS):
            if is_prefix(word, m.name):
                selected.add(i)
                break
        else:
            if word and is_prefix(word, STATS):
                stats = True
            else:
                raise BpftError(f"unknown metric {word}")
    if len(selected) > MAX_NUM_PROFILE_METRICS:
        raise BpftError(
            f"too many ({len(selected)}) metrics, please specify no more than "
            f"{MAX_NUM_PROFILE_METRICS} metrics at at time"
        )
    return sorted(selected), stats


# --- output -------------------------------------------------------------------------


def _f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def ratio(counter: int, mul: float, base: int) -> float:
    """bpftool's ``counter * ratio_mul / base``: a u64 times a float, in single precision."""
    return _f32(_f32(_f32(counter) * _f32(mul)) / _f32(base))


def plain_readings(run_cnt: int, readings: dict[int, Reading]) -> str:
    """bpftool's profile_print_readings_plain() for the metrics in ``readings`` (index -> sum)."""
    out = [f"\n{run_cnt:18d} {'run_cnt':<20}\n"]
    for m, val in sorted(readings.items()):
        metric = METRICS[m]
        line = f"{val.counter:18d} {metric.name:<20}"
        r = metric.ratio_metric - 1
        if r >= 0 and r in readings and readings[r].counter > 0:
            line += f"# {ratio(val.counter, metric.ratio_mul, readings[r].counter):8.2f} {metric.ratio_desc:<30}"
        else:
            line += " " * 41
        if val.enabled > val.running:
            line += f"({val.running * 100.0 / val.enabled:4.2f}%)"
        out.append(line + "\n")
    return "".join(out)


def json_readings(run_cnt: int, readings: dict[int, Reading]) -> list[dict]:
    """bpftool's profile_print_readings_json() objects."""
    return [
        {
            "metric": METRICS[m].name,
            "run_cnt": run_cnt,
            "value": val.counter,
            "enabled": val.enabled,
            "running": val.running,
        }
        for m, val in sorted(readings.items())
    ]


class StatsResult(NamedTuple):
    run_cnt: int
    run_time_ns: int
    elapsed_ns: int

    @property
    def avg_ns(self) -> float | None:
        return self.run_time_ns / self.run_cnt if self.run_cnt else None


STATS_LABEL = "BPF stats (the kernel's run count and run time, not hardware counters)"


def plain_stats(s: StatsResult) -> str:
    out = [f"\n{STATS_LABEL}, over {s.elapsed_ns / 1e9:.2f}s:\n"]
    out.append(f"{s.run_cnt:18d} run_cnt\n")
    line = f"{s.run_time_ns:18d} {'run_time_ns':<20}"
    if s.avg_ns is not None:
        line += f"# {s.avg_ns:8.2f} {'ns per run (average)':<30}"
    out.append(line.rstrip() + "\n")
    return "".join(out)


def json_stats(s: StatsResult) -> dict:
    from bpft.output import RawJson

    return {
        "metric": STATS,
        "source": "bpf_stats",
        "run_cnt": s.run_cnt,
        "run_time_ns": s.run_time_ns,
        "avg_run_time_ns": RawJson(f"{s.avg_ns:.2f}") if s.avg_ns is not None else None,
        "duration_ns": s.elapsed_ns,
    }


# --- the kernel side ----------------------------------------------------------------


class Refused(BpftError):
    """A step the kernel refused: the message names it, the errno, and the usual cause."""

    def __init__(self, step: str, err: int | None, why: str = ""):
        """``err``: the OSError's errno (None, which a syscall never leaves, reads as unknown)."""
        reason = os.strerror(err) if err is not None else "unknown error"
        text = f"cannot profile: {step} failed: {reason}"
        if why:
            text += f"; {why}"
        super().__init__(text)
        self.step = step
        self.errno = err


def _paranoid() -> str:
    try:
        with open("/proc/sys/kernel/perf_event_paranoid") as f:
            return f.read().strip()
    except OSError:
        return "?"


def _lockdown() -> str | None:
    try:
        with open("/sys/kernel/security/lockdown") as f:
            text = f.read()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else None


STATS_HINT = "the 'stats' metric (run count and run time from BPF stats) works without them"


def why_load(err: int | None, log: str = "") -> str:
    if err == _errno.EPERM:
        lock = _lockdown()
        state = f" (lockdown is '{lock}' here)" if lock else ""
        return (
            "the kernel refuses fentry/fexit programs when it is locked down (lockdown=integrity or "
            f"confidentiality){state}, or when the caller lacks CAP_BPF and CAP_PERFMON; " + STATS_HINT
        )
    if err in (524, _errno.EOPNOTSUPP, _errno.ENOTSUP):
        return "this kernel cannot attach BPF trampolines (fentry/fexit) here; " + STATS_HINT
    if err in (_errno.EINVAL, _errno.EACCES) and log:
        last = [line for line in log.strip().splitlines() if line.strip()]
        return f"the verifier said: {last[-1] if last else log.strip()}"
    return STATS_HINT


def why_perf(err: int | None) -> str:
    if err in (_errno.ENOENT, _errno.EOPNOTSUPP, _errno.ENODEV):
        return "this machine has no hardware PMU for this event (usual in virtual machines); " + STATS_HINT
    if err in (_errno.EACCES, _errno.EPERM):
        return f"kernel.perf_event_paranoid is {_paranoid()} and the caller lacks CAP_PERFMON; " + STATS_HINT
    return STATS_HINT


class Kernel:
    """The kernel calls a hardware profile makes; tests replace it with a recorder."""

    def __init__(self):
        from bpft.kernel import syscall as sc

        self.sc = sc

    def num_cpus(self) -> int:
        return perf.possible_cpus()

    def prog_info(self, fd: int):
        from bpft.kernel import info

        return info.prog_info(fd)

    def func_type_id(self, fd: int) -> int:
        """The BTF type id of the program's main function (its first func_info record)."""
        from bpft.kernel import info

        base = info.ProgInfo()
        self.sc.obj_get_info_by_fd(fd, base)
        arrays = info.prog_arrays(fd, base)
        if len(arrays.func_info) < 8:
            return 0
        return struct.unpack_from("<I", arrays.func_info, 4)[0]

    def func_name(self, btf_id: int, type_id: int) -> str | None:
        from bpft.btf import func_name_from_kernel

        return func_name_from_kernel(btf_id, type_id)

    def map_create(self, map_type: int, key_size: int, value_size: int, max_entries: int, name: str) -> int:
        from bpft.kernel.memlock import bump_memlock_rlimit

        bump_memlock_rlimit()  # before 5.11, as libbpf does for bpftool's profiler
        return self.sc.map_create(map_type, key_size, value_size, max_entries, name=name)

    def prog_load(self, insns: bytes, name: str, attach_type: int, attach_btf_id: int, target_fd: int) -> int:
        import ctypes

        sc = self.sc
        buf = ctypes.create_string_buffer(insns, len(insns))
        lic = ctypes.create_string_buffer(b"Dual BSD/GPL")
        attr = sc.ProgLoadAttr(
            prog_type=PROG_TYPE_TRACING,
            insn_cnt=len(insns) // 8,
            insns=ctypes.addressof(buf),
            license=ctypes.addressof(lic),
            prog_name=name.encode()[:15],
            expected_attach_type=attach_type,
            attach_btf_id=attach_btf_id,
            attach_prog_fd=target_fd,
        )
        return sc.prog_load(attr, log_size=1 << 20)

    def perf_event_open(self, attr: perf.PerfEventAttr, cpu: int) -> int:
        return perf.perf_event_open(attr, -1, cpu, -1, 0)

    def map_update(self, map_fd: int, key: int, value: int) -> None:
        self.sc.map_update_elem(map_fd, struct.pack("<I", key), struct.pack("<I", value))

    def enable(self, fd: int) -> None:
        perf.enable(fd)

    def attach(self, prog_fd: int) -> int:
        return self.sc.raw_tracepoint_open(None, prog_fd)

    def lookup(self, map_fd: int, key: int, size: int) -> bytes:
        return self.sc.map_lookup_elem(map_fd, struct.pack("<I", key), size)

    def close(self, fd: int) -> None:
        os.close(fd)


PROG_TYPE_TRACING = 26
ATTACH_TRACE_FENTRY = 24
ATTACH_TRACE_FEXIT = 25
MAP_PERF_EVENT_ARRAY = 4
MAP_PERCPU_ARRAY = 6


class HardwareProfile:
    """fentry/fexit + perf events on one target, as bpftool's profiler skeleton does."""

    def __init__(self, kernel: Kernel, target_fd: int, metrics: list[int], debug: Callable[[str], None] | None = None):
        self.k = kernel
        self.target_fd = target_fd
        self.metrics = metrics
        self.debug = debug or (lambda msg: None)
        self.fds: list[int] = []  # everything to close, in order of creation
        self.events: list[int] = []
        self.maps: Maps | None = None  # made by start()
        self.num_cpu = 0

    def target_name(self) -> tuple[int, str]:
        info = self.k.prog_info(self.target_fd)
        label = f"program {info.id}" + (f" ({info.name.decode(errors='replace')})" if info.name else "")
        if info.btf_id == 0:
            raise BpftError(
                f"{label} has no BTF: fentry/fexit attach to a function its BTF describes "
                "(load it from an object built with -g); " + STATS_HINT
            )
        if info.nr_func_info == 0:
            raise BpftError(f"{label} has BTF but no func_info: fentry/fexit cannot name its function")
        type_id = self.k.func_type_id(self.target_fd)
        name = self.k.func_name(info.btf_id, type_id)
        if not name:
            raise BpftError(f"btf {info.btf_id} doesn't have type {type_id}")
        return type_id, name

    def start(self) -> None:
        from bpft import insn

        from bpft_profile import progs

        type_id, name = self.target_name()
        self.num_cpu = ncpu = self.k.num_cpus()
        nm = len(self.metrics)
        specs = [
            ("events", MAP_PERF_EVENT_ARRAY, 4, 4, nm * ncpu),
            ("fentry_readings", MAP_PERCPU_ARRAY, 4, progs.VALUE_SIZE, nm),
            ("accum_readings", MAP_PERCPU_ARRAY, 4, progs.VALUE_SIZE, nm),
            ("counts", MAP_PERCPU_ARRAY, 4, 8, 1),
        ]
        fds = []
        for map_name, mtype, ks, vs, n in specs:
            try:
                fd = self.k.map_create(mtype, ks, vs, n, map_name)
            except OSError as e:
                raise Refused(f"creating the {map_name} map (BPF_MAP_CREATE)", e.errno, STATS_HINT) from None
            self.fds.append(fd)
            fds.append(fd)
        self.maps = maps = progs.Maps(*fds)
        self.debug(f"profile: target function '{name}' (BTF type {type_id}), {ncpu} CPUs, {nm} metrics")

        loaded = []
        for kind, gen, attach in (
            ("fentry", progs.fentry, ATTACH_TRACE_FENTRY),
            ("fexit", progs.fexit, ATTACH_TRACE_FEXIT),
        ):
            code = insn.encode_all(gen(maps, ncpu, nm))
            try:
                fd = self.k.prog_load(code, f"{kind}_{name}"[:15], attach, type_id, self.target_fd)
            except OSError as e:
                log = getattr(e, "log", "")  # the verifier's, when the kernel wrote one
                if log:
                    self.debug(log.rstrip())
                raise Refused(
                    f"loading the {kind} program for '{name}' (BPF_PROG_LOAD, BPF_TRACE_{kind.upper()})",
                    e.errno,
                    why_load(e.errno, log),
                ) from None
            self.fds.append(fd)
            loaded.append(fd)

        key = 0
        for m in self.metrics:
            metric = METRICS[m]
            for cpu in range(ncpu):
                try:
                    pfd = self.k.perf_event_open(perf_attr(metric), cpu)
                except OSError as e:
                    raise Refused(
                        f"opening the {metric.name} perf event on CPU {cpu} (perf_event_open)",
                        e.errno,
                        why_perf(e.errno),
                    ) from None
                self.events.append(pfd)
                try:
                    self.k.map_update(maps.events, key, pfd)
                    self.k.enable(pfd)
                except OSError as e:
                    raise Refused(f"enabling the {metric.name} perf event on CPU {cpu}", e.errno) from None
                key += 1

        for kind, fd in zip(("fentry", "fexit"), loaded, strict=True):
            try:
                self.fds.append(self.k.attach(fd))
            except OSError as e:
                raise Refused(f"attaching the {kind} program (BPF_RAW_TRACEPOINT_OPEN)", e.errno) from None

    def close_events(self) -> None:
        for fd in reversed(self.events):
            self.k.close(fd)
        self.events = []

    def read(self) -> tuple[int, dict[int, Reading]]:
        """The run count and each metric's readings summed over CPUs (bpftool's profile_read_values)."""
        assert self.maps is not None, "start() comes first"
        ncpu = self.num_cpu
        raw = self.k.lookup(self.maps.counts, 0, 8 * ncpu)
        run_cnt = sum(struct.unpack(f"<{ncpu}Q", raw[: 8 * ncpu]))
        out = {}
        for key, m in enumerate(self.metrics):
            raw = self.k.lookup(self.maps.accum_readings, key, 24 * ncpu)
            vals = struct.unpack(f"<{3 * ncpu}Q", raw[: 24 * ncpu])
            out[m] = Reading(sum(vals[0::3]), sum(vals[1::3]), sum(vals[2::3]))
        return run_cnt, out

    def close(self) -> None:
        self.close_events()
        for fd in reversed(self.fds):
            try:
                self.k.close(fd)
            except OSError:
                pass
        self.fds = []


class StatsProfile:
    """Run count and run time from the kernel's BPF stats, over the profiling window."""

    def __init__(self, target_fd: int):
        self.target_fd = target_fd
        self.stats_fd = -1

    def _now(self) -> tuple[int, int, int]:
        from bpft.kernel import info

        i = info.prog_info(self.target_fd)
        return i.run_cnt, i.run_time_ns, time.monotonic_ns()

    def start(self) -> None:
        from bpft.kernel import syscall as sc

        try:
            self.stats_fd = sc.enable_stats(sc.STATS_RUN_TIME)
        except OSError as e:
            raise Refused("enabling BPF stats (BPF_ENABLE_STATS)", e.errno, "it needs CAP_SYS_ADMIN") from None
        self.before = self._now()

    def read(self) -> StatsResult:
        after = self._now()
        b = self.before
        return StatsResult(after[0] - b[0], after[1] - b[1], after[2] - b[2])

    def close(self) -> None:
        if self.stats_fd >= 0:
            os.close(self.stats_fd)
            self.stats_fd = -1


# --- the verb -----------------------------------------------------------------------


class _Stop(Exception):
    pass


def _interrupt(signum, frame):
    # the first Ctrl-C ends the window; more of them must not cut the report short
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _Stop()


def wait(duration: int | None) -> None:
    """``duration`` seconds, or until Ctrl-C (SIGINT) or SIGTERM."""
    end = None if duration is None else time.monotonic() + duration
    while True:
        left = 3600.0 if end is None else end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 3600.0))


def run(ctx: Context, args: Args, kernel: Kernel | None = None) -> int:
    args.require(3)
    fd = ctx.prog_fd(args)
    hw = stats = None
    previous = {}
    try:
        duration = None
        if len(args) > 2 and is_prefix(args.current, "duration"):
            args.next()
            value, rest = strtoul(args.next())
            if rest:
                raise UsageError()
            duration = value
        metrics, want_stats = parse_metrics(args.rest())

        if metrics:
            hw = HardwareProfile(kernel or Kernel(), fd, metrics, ctx.debug)
            hw.start()
        if want_stats:
            stats = StatsProfile(fd)
            stats.start()
        try:
            previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
            for s in previous:
                signal.signal(s, _interrupt)
            ctx.debug("profile: counting started")
            wait(duration)
        except _Stop:
            pass

        results = []
        text = []
        if hw is not None:
            hw.close_events()
            run_cnt, readings = hw.read()
            results += json_readings(run_cnt, readings)
            text.append(plain_readings(run_cnt, readings))
        if stats is not None:
            measured = stats.read()
            results.append(json_stats(measured))
            text.append(plain_stats(measured))
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if hw is not None:
            hw.close()
        if stats is not None:
            stats.close()
        os.close(fd)

    if ctx.json:
        from bpft.output import Record

        ctx.emitter.record(Record(results))
    else:
        ctx.emitter.text("".join(text))
    return 0
