"""``prog profile`` end to end where fentry/fexit are allowed (the matrix's guests).

The software clocks (``task_clock``, ``cpu_clock``) take the whole hardware path:
generated fentry/fexit programs attached to the target, one perf event per CPU,
per-CPU readings summed, output. The target is driven with BPF_PROG_TEST_RUN
while the profile runs; its run count must be the one the kernel's own BPF
statistics count over the same runs. Hardware metrics must reach perf_event_open
and, without a PMU (TCG), fail there, saying so.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import prog_id_of  # noqa: E402
from guest import BPF_DIR, bpft, bpftool, ids, object_ids, settled, tracing_allowed  # noqa: E402

from bpft.kernel import info as kinfo  # noqa: E402
from bpft.kernel import syscall as sc  # noqa: E402

pytestmark = pytest.mark.kernel

RUNS, REPEAT = 4, 250


@pytest.fixture
def target(bpffs_dir):
    tracing_allowed()
    r = bpftool("prog", "loadall", str(BPF_DIR / "matrix_progs.o"), str(bpffs_dir / "p"))
    assert r.status == 0, r
    return str(bpffs_dir / "p" / "mx_target")


def _test_run(fd: int, repeat: int) -> None:
    pkt = ctypes.create_string_buffer(bytes(64), 64)
    attr = sc.TestRunAttr(prog_fd=fd, data_size_in=64, data_in=ctypes.addressof(pkt), repeat=repeat)
    sc.bpf(sc.PROG_TEST_RUN, attr)


class Driver(threading.Thread):
    """Waits until the profiler's two programs are attached (two new links), then runs the
    target RUNS x REPEAT times; ``done`` is set when it has."""

    def __init__(self, pin: str, links_before: set[int]):
        super().__init__(daemon=True)
        self.pin, self.links_before = pin, links_before
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            deadline = time.monotonic() + 120
            while len(ids(sc.LINK_GET_NEXT_ID) - self.links_before) < 2:
                assert time.monotonic() < deadline, "the profiler never attached"
                time.sleep(0.2)
            time.sleep(0.5)  # both links exist; the second attach has returned by now
            fd = sc.obj_get(self.pin)
            try:
                for _ in range(RUNS):
                    _test_run(fd, REPEAT)
            finally:
                os.close(fd)
            self.done.set()
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e
            self.done.set()


def _stats_run_cnt(pin: str) -> int:
    fd = sc.obj_get(pin)
    try:
        return kinfo.prog_info(fd).run_cnt
    finally:
        os.close(fd)


@pytest.mark.parametrize("flags", [["-j"]], ids=["json"])  # the plain form: tests/profile
def test_software_clocks_count_every_run(target, flags):
    prog_id = str(prog_id_of(target))
    before = object_ids()
    stats_fd = sc.enable_stats(sc.STATS_RUN_TIME)  # the kernel's own count, for comparison
    try:
        stats_before = _stats_run_cnt(target)
        driver = Driver(target, before[2])
        driver.start()
        # long enough under TCG for the driver to finish well inside the window
        r = bpft(*flags, "prog", "profile", "id", prog_id, "duration", "12", "task_clock", "cpu_clock")
        driver.join(60)
        stats_runs = _stats_run_cnt(target) - stats_before
    finally:
        os.close(stats_fd)
    assert driver.error is None, driver.error
    assert r.status == 0, r
    assert stats_runs == RUNS * REPEAT
    if flags:
        rows = json.loads(r.stdout)
        assert [row["metric"] for row in rows] == ["task_clock", "cpu_clock"]
        for row in rows:
            assert row["run_cnt"] == stats_runs
            assert row["value"] > 0 and row["enabled"] > 0 and row["running"] > 0
    else:
        lines = r.stdout.splitlines()
        assert lines[0] == ""
        assert re.fullmatch(r" *(\d+) run_cnt +", lines[1]) and int(lines[1].split()[0]) == stats_runs, lines
        for line, name in zip(lines[2:], ("task_clock", "cpu_clock"), strict=True):
            m = re.fullmatch(rf" *(\d+) {name} +", line)
            assert m and int(m.group(1)) > 0, line
    assert settled(before) == (set(), set(), set())  # the profiler's programs, maps and links are gone


def test_hardware_metric_reaches_perf_event_open(target):
    """fentry/fexit load and the cycles event is asked for; without a PMU the error names
    the step and the reason, and nothing is left behind."""
    prog_id = str(prog_id_of(target))
    before = object_ids()
    r = bpft("prog", "profile", "id", prog_id, "duration", "1", "cycles")
    if r.status == 0:  # a machine with a PMU (KVM): a real reading
        assert re.search(r"^ *\d+ cycles", r.stdout, re.M), r
    else:
        assert "perf_event_open" in r.stderr and "failed" in r.stderr, r
        assert "No such file or directory" not in r.stderr or "no hardware PMU" in r.stderr, r
    assert settled(before) == (set(), set(), set())
