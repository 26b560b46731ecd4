"""``bpft prog top`` on the kernel: what it reports against what the test made programs do.

Programs are driven with BPF_PROG_TEST_RUN (``bpft prog run ... repeat N``),
which the kernel counts in ``run_cnt``/``run_time_ns`` while statistics are on.
The bounds are those of the sampling window, derived from what the test
knows for certain: a drive started after interval k's line was read ran
after sample k; a drive that ended before sample k's ``time`` (the wall-clock
time at which that sample began) ran before it. No test asserts a speed.
Other programs come and go on this machine: only our own ids are compared.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest
from bpft.kernel import info, syscall
from conftest import bpft_cmd, prog_id_of, run_bpft
from top_kit import drive, load_return_zero

PROGRAM_KEYS = [
    "id", "type", "name", "events", "events_per_s", "avg_ns", "cpu_pct", "run_cnt", "run_time_ns", "pids",
]  # fmt: skip


class Top:
    """A running ``bpft -j prog top ...``, read line by line."""

    def __init__(self, *words: str):
        self.proc = subprocess.Popen(
            [*bpft_cmd(), "-j", "prog", "top", *words], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[dict] = []

    def next(self) -> dict | None:
        line = self.proc.stdout.readline()
        if not line:
            return None
        got = json.loads(line)
        self.lines.append(got)
        return got

    def finish(self) -> int:
        while self.next() is not None:
            pass
        rc = self.proc.wait(timeout=60)
        assert self.proc.stderr.read() == ""
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def top():
    started: list[Top] = []

    def start(*words: str) -> Top:
        started.append(Top(*words))
        return started[-1]

    yield start
    for t in started:
        t.kill()


@pytest.fixture
def socket_prog(loaded, tmp_path):
    """(pin, id, packet file) of run_progs.o's socket filter, freshly loaded (it has never run)."""
    pin = loaded("run_progs.o") / "run_socket"
    packet = tmp_path / "pkt"
    packet.write_bytes(bytes(range(64)))
    return pin, prog_id_of(pin), packet


def ours(line: dict, prog_id: int) -> dict | None:
    return next((p for p in line["programs"] if p["id"] == prog_id), None)


def kernel_counters(fd: int) -> tuple[int, int]:
    i = info.prog_info(fd)
    return i.run_cnt, i.run_time_ns


@pytest.mark.kernel
def test_json_lines_count_what_was_driven(socket_prog, top):
    pin, prog_id, packet = socket_prog
    held = syscall.obj_get(str(pin))  # this process holds the program: its pid must be listed
    try:
        comm = open("/proc/self/comm").read().strip()[:15]
        plan = {1: 1000, 2: 3000}  # after line k is read, run the program this many times
        drives: list[tuple[int, int, float, float]] = []  # (after line, runs, start, end)
        session = top("interval", "0.5", "count", "4")
        while (line := session.next()) is not None:
            k = len(session.lines)
            if k in plan:
                start = time.time()
                run_bpft("prog", "run", "pinned", str(pin), "data_in", str(packet), "repeat", str(plan[k]), check=True)
                drives.append((k, plan[k], start, time.time()))
        assert session.finish() == 0
        final_cnt, final_time = kernel_counters(held)
    finally:
        os.close(held)

    assert len(session.lines) == 4
    assert final_cnt == sum(plan.values())  # nothing else ran it
    cpus = os.sysconf("SC_NPROCESSORS_ONLN")
    previous_cnt = previous_time = 0  # a fresh program: both counters started at 0
    for k, line in enumerate(session.lines, 1):
        assert list(line) == ["time", "interval_s", "programs"]
        prog = ours(line, prog_id)
        assert prog is not None, f"program {prog_id} missing from interval {k}"
        assert list(prog) == PROGRAM_KEYS
        assert (prog["type"], prog["name"]) == ("socket_filter", "run_socket")
        assert {"pid": os.getpid(), "comm": comm} in prog["pids"]
        # the interval's figures are the totals' differences, over the interval's length
        events, spent = prog["run_cnt"] - previous_cnt, prog["run_time_ns"] - previous_time
        assert prog["events"] == events
        assert prog["events_per_s"] == pytest.approx(events / line["interval_s"], rel=1e-5)
        assert prog["cpu_pct"] == pytest.approx(spent * 100 / (line["interval_s"] * 1e9 * cpus), rel=1e-5, abs=1e-9)
        assert prog["avg_ns"] == (pytest.approx(spent / events) if events else None)
        # the sampling window: runs started after line j was read come after sample j;
        # runs that ended before sample k began are in it
        at_most = sum(runs for after, runs, _, _ in drives if after < k)
        at_least = sum(runs for _, runs, _, end in drives if end < line["time"])
        assert at_least <= prog["run_cnt"] <= at_most, (k, prog, drives)
        previous_cnt, previous_time = prog["run_cnt"], prog["run_time_ns"]
    # what the last sample did not see came after it: the sum is what was driven
    assert sum(ours(line, prog_id)["events"] for line in session.lines) + (final_cnt - previous_cnt) == final_cnt
    assert previous_time <= final_time
    assert session.lines[0]["programs"] and ours(session.lines[0], prog_id)["events"] == 0


@pytest.mark.kernel
def test_prog_handle_and_sort(socket_prog, loaded, top):
    pin, prog_id, _ = socket_prog
    one = top("id", str(prog_id), "interval", "0.1", "count", "2")
    assert one.finish() == 0
    assert [[p["id"] for p in line["programs"]] for line in one.lines] == [[prog_id], [prog_id]]

    pin_dir = pin.parent
    ids = sorted(prog_id_of(p) for p in pin_dir.iterdir())
    for word, key in (("id", lambda p: p["id"]), ("name", lambda p: (p["name"], p["id"]))):
        session = top("interval", "0.1", "count", "1", "sort", word)
        assert session.finish() == 0
        (line,) = session.lines
        assert line["programs"] == sorted(line["programs"], key=key)
        assert set(ids) <= {p["id"] for p in line["programs"]}
    # "i" is the id handle (handles come first), "in" the interval keyword
    by_prefix = top("i", str(prog_id), "in", "0.1", "c", "1", "s", "n")
    assert by_prefix.finish() == 0
    assert [p["id"] for p in by_prefix.lines[0]["programs"]] == [prog_id]


@pytest.mark.kernel
def test_programs_that_appear_and_vanish(top):
    session = top("interval", "0.4", "count", "4", "sort", "id")
    assert session.next() is not None
    fd = load_return_zero("bpft_top_new")
    try:
        new_id = info.prog_info(fd).id
        driven_end = None
        drive(fd, 500)
        driven_end = time.time()
        while len(session.lines) < 3:
            assert session.next() is not None
    finally:
        os.close(fd)
        closed = time.time()
    assert session.finish() == 0
    seen = [ours(line, new_id) for line in session.lines]
    assert seen[0] is None  # loaded after the first line was read
    first = next(i for i, p in enumerate(seen) if p is not None)
    appeared = seen[first]
    # measured from zero in the interval it appeared in: all its runs are events of that interval
    assert appeared["events"] == appeared["run_cnt"] <= 500
    if driven_end < session.lines[first]["time"]:
        assert appeared["events"] == 500
    assert sum(p["events"] for p in seen if p) == max(p["run_cnt"] for p in seen if p)
    if closed < session.lines[3]["time"]:  # the last sample began after the fd closed
        assert seen[3] is None


@pytest.mark.kernel
def test_plain_and_table_output(socket_prog):
    _, prog_id, _ = socket_prog
    plain = run_bpft("prog", "top", "id", str(prog_id), "interval", "0.1", "count", "2", check=True)
    blocks = plain.stdout_text.split("\n\n")
    assert blocks[-1] == "" and len(blocks) == 3
    for block in blocks[:2]:
        heading, titles, row = block.splitlines()
        seconds = float(re.search(r"  interval (\d+\.\d{3})s  programs 1  cpus \d+$", heading).group(1))
        assert seconds > 0  # samples keep to a grid of 0.1 s: a late one makes the next interval shorter
        assert titles.split() == ["ID", "TYPE", "NAME", "EVENTS/S", "AVG_NS", "CPU%", "RUN_CNT", "RUN_TIME_NS", "PIDS"]
        assert row.split()[:3] == [str(prog_id), "socket_filter", "run_socket"]
    narrow = run_bpft("prog", "top", "id", str(prog_id), "in", "0.1", "c", "1", env={"COLUMNS": "40"}, check=True)
    assert max(len(line) for line in narrow.stdout_text.splitlines()[1:]) <= 40
    table = run_bpft("--table", "prog", "top", "id", str(prog_id), "in", "0.1", "c", "1", check=True)
    lines = table.stdout_text.splitlines()
    assert lines[1].split() == ["id", "type", "name", "events/s", "avg_ns", "cpu%", "run_cnt", "run_time_ns", "pids"]
    assert lines[3].split()[:3] == [str(prog_id), "socket_filter", "run_socket"]


@pytest.mark.kernel
@pytest.mark.parametrize(
    "words, message",
    [
        (["bogus"], "what is 'bogus'?"),
        (["interval", "soon"], "can't parse soon as interval (seconds)"),
        (["interval", "0"], "interval must be from 0.05 to 86400 seconds, got 0"),
        (["interval", "nan"], "interval must be from 0.05 to 86400 seconds, got nan"),
        (["count", "0"], "count must be at least 1"),
        (["count", "-"], "can't parse - as count"),
        (["sort", "fast"], "unknown sort key 'fast' (one of cpu, runtime, events, avg, id, name)"),
        (["sort", ""], "unknown sort key '' (one of cpu, runtime, events, avg, id, name)"),
        (["count", "1", "count", "2"], "'count' given twice"),
        (["id", "0x"], "can't parse 0x as ID"),
        (["name", "bpft_no_such_program"], "no program matches this handle"),
        (["count", "1", "id", "1"], "what is 'id'?"),
    ],
)
def test_bad_words(words, message):
    plain = run_bpft("prog", "top", *words)
    assert (plain.returncode, plain.stderr_text, plain.stdout_text) == (255, f"Error: {message}\n", "")
    as_json = run_bpft("-j", "prog", "top", *words)
    assert as_json.returncode == 255 and json.loads(as_json.stdout_text) == {"error": message}


@pytest.mark.kernel
def test_missing_value_prints_usage():
    proc = run_bpft("prog", "top", "interval")
    assert (
        proc.returncode == 255 and "bpft prog top [PROG] [interval SECONDS] [count N] [sort SORT]" in proc.stderr_text
    )
    assert run_bpft("-j", "prog", "top", "count").stdout_text == "null\n"


def test_help_lists_top():
    proc = run_bpft("prog", "help")
    assert "bpft prog top [PROG] [interval SECONDS] [count N] [sort SORT]" in proc.stderr_text
    assert "SORT := { cpu | runtime | events | avg | id | name }" in proc.stderr_text
