"""The ``perf_event`` target: a perf_event program counting the samples of a software clock,
attached by bpft through perf-event links (one per online CPU unless ``cpu`` or ``pid``),
seen by bpftool (``link show``), running (its map counts samples per CPU), named by
``--detail``, detached by bpft; and every bad word refused with nothing left behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from attach_helpers import bpft_cmd, count, links_of, prog_id_of, run
from conftest import reaped

from bpft.kernel import perf

pytestmark = pytest.mark.kernel


def bpft(*args: str):
    return run([*bpft_cmd(), *args])


@pytest.fixture
def prog(loaded):
    return loaded("attach_perf_event.o") / "count_samples"


def samples(prog) -> list[int]:
    return [count(prog, cpu) for cpu in perf.online_cpus()]


def wait_for(predicate, seconds: float = 10.0) -> bool:
    """Poll: samples arrive at the event's rate, on a machine shared with other tests."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def detail(prog_id: int) -> list[dict]:
    got = bpft("-j", "--detail", "prog", "show", "id", str(prog_id))
    assert got.returncode == 0, got.stderr_text
    return json.loads(got.stdout_text)["attached"]


def test_a_link_per_online_cpu_pinned_in_a_directory(prog, bpffs_dir):
    pid = prog_id_of(prog)
    pins = bpffs_dir / "clock_links"
    got = bpft("prog", "attach", "pinned", str(prog), "perf_event", "cpu-clock", "freq", "1000", "link", str(pins))
    assert (got.returncode, got.stdout_text, got.stderr_text) == (0, "", "")
    cpus = perf.online_cpus()
    assert sorted(p.name for p in pins.iterdir()) == sorted(f"cpu{cpu}" for cpu in cpus)
    shown = links_of(pid)
    assert [link["type"] for link in shown] == ["perf_event"] * len(cpus)
    # every CPU's clock samples: each CPU's slot grows
    before = samples(prog)
    assert wait_for(lambda: all(now > then for now, then in zip(samples(prog), before, strict=True)))
    assert sorted(detail(pid), key=lambda p: p["link_id"]) == [
        {"target": "perf_event cpu-clock", "link_id": link["id"]} for link in sorted(shown, key=lambda k: k["id"])
    ]
    listed = json.loads(bpft("-j", "--detail", "link", "show", "pinned", str(pins / f"cpu{cpus[0]}")).stdout_text)
    assert listed["type"] == "perf_event" and listed["target"] == "perf_event cpu-clock"
    got = bpft("prog", "detach", "pinned", str(prog), "perf_event", "cpu-clock")
    assert (got.returncode, got.stderr_text) == (0, "")
    assert links_of(pid) == [] and not pins.exists()
    stopped = samples(prog)
    time.sleep(0.1)
    assert samples(prog) == stopped


def test_one_cpu_one_link(prog, bpffs_dir):
    pid = prog_id_of(prog)
    cpus = perf.online_cpus()
    if len(cpus) < 2:
        pytest.skip("needs two online CPUs to tell them apart")
    on, off = cpus[0], cpus[1]
    link = bpffs_dir / "clock_link"
    words = ["perf_event", "cpu-clock", "period", "1000000", "cpu", str(on)]
    got = bpft("prog", "attach", "pinned", str(prog), *words, "link", str(link))
    assert (got.returncode, got.stderr_text) == (0, "")
    [info] = links_of(pid)
    before_on, before_off = count(prog, on), count(prog, off)
    assert wait_for(lambda: count(prog, on) >= before_on + 3)  # 1 ms period
    assert count(prog, off) == before_off  # CPU `on`'s clock runs the program on CPU `on` only
    assert detail(pid) == [{"target": "perf_event cpu-clock", "link_id": info["id"]}]
    got = bpft("prog", "detach", "pinned", str(prog), "perf_event", "cpu-clock")
    assert got.returncode == 0, got.stderr_text
    assert links_of(pid) == [] and not link.exists()


def test_pid_follows_one_process(prog, bpffs_dir):
    """``task-clock pid PID``: samples while that process runs, one link on every CPU."""
    pid = prog_id_of(prog)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    link = bpffs_dir / "task_link"
    try:
        words = ["perf_event", "task-clock", "freq", "1000", "pid", str(busy.pid)]
        got = bpft("prog", "attach", "pinned", str(prog), *words, "link", str(link))
        assert (got.returncode, got.stderr_text) == (0, "")
        [info] = links_of(pid)
        before = sum(samples(prog))
        assert wait_for(lambda: sum(samples(prog)) >= before + 5)
        assert detail(pid) == [{"target": "perf_event task-clock", "link_id": info["id"]}]
    finally:
        busy.kill()
        busy.wait()
    got = bpft("prog", "detach", "pinned", str(prog), "perf_event", "task-clock")
    assert got.returncode == 0, got.stderr_text
    assert links_of(pid) == [] and not link.exists()


def hold_then_ctrl_c(prog, *words: str) -> tuple[str, list[dict], subprocess.CompletedProcess]:
    """Run ``bpft [-j] prog attach PROG WORDS`` in the foreground; once it says it holds its
    links, take bpftool's view of them, then Ctrl-C it. Returns its first stderr line, the
    links as they were held, and how it ended."""
    opts = ["-j"] if words[0] == "-j" else []
    cmd = [*bpft_cmd(), *opts, "prog", "attach", "pinned", str(prog), *words[len(opts) :]]
    holder = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with reaped(holder):
        line = holder.stderr.readline()
        held = sorted(links_of(prog_id_of(prog)), key=lambda link: link["id"])
        holder.send_signal(signal.SIGINT)
        out, err = holder.communicate(timeout=30)
    return line, held, subprocess.CompletedProcess(cmd, holder.returncode, out, err)


def test_held_in_the_foreground_until_ctrl_c(prog):
    line, held, ended = hold_then_ctrl_c(prog, "perf_event", "cpu-clock")
    assert len(held) == len(perf.online_cpus())
    cpus = ", ".join(f"cpu{cpu}" for cpu in perf.online_cpus())
    assert f"perf_event cpu-clock on every online CPU ({cpus}) as links " in line, line
    assert "holding them until Ctrl-C" in line
    assert all(str(link["id"]) in line for link in held)
    assert ended.returncode == 0 and ended.stdout == "" and "closed" in ended.stderr
    assert links_of(prog_id_of(prog)) == []


def test_held_in_the_foreground_with_json_lists_every_link(prog):
    pid = prog_id_of(prog)
    line, held, ended = hold_then_ctrl_c(prog, "-j", "perf_event", "page-faults")
    assert "holding them until Ctrl-C" in line and ended.returncode == 0
    assert json.loads(ended.stdout) == [
        {"link_id": link["id"], "prog_id": pid, "target": f"perf_event page-faults on CPU {cpu}"}
        for link, cpu in zip(held, perf.online_cpus(), strict=True)
    ]
    assert links_of(pid) == []


EVENTS = ", ".join(perf.EVENT_BY_NAME)


@pytest.mark.parametrize(
    "words, message",
    [
        (["bogus"], f"unknown perf event 'bogus': expected one of {EVENTS}"),
        (["cpu-clock", "freq", "10", "period", "5"], "perf_event takes 'freq' or 'period', not both"),
        (["cpu-clock", "freq", "x"], "can't parse 'x' as a frequency (Hz)"),
        (["cpu-clock", "period", "0"], "can't parse '0' as a period"),
        (["cpu-clock", "cpu", "0", "cpu", "0"], "perf_event: 'cpu' given twice"),
        (["cpu-clock", "cpu"], "perf_event: 'cpu' needs a value"),
        (["cpu-clock", "cpu", "4095"], "no such CPU online: 4095"),
        (["cpu-clock", "pid", "0"], "can't parse '0' as a process id"),
        (["cpu-clock", "cpu", "0", "bogus"], "what is 'bogus'?"),
    ],
)
def test_bad_words(prog, words, message):
    for opts in ([], ["-j"]):
        got = bpft(*opts, "prog", "attach", "pinned", str(prog), "perf_event", *words)
        assert got.returncode != 0
        if opts:
            assert json.loads(got.stdout_text) == {"error": message}
        else:
            assert (got.stdout_text, got.stderr_text) == ("", f"Error: {message}\n")
    assert links_of(prog_id_of(prog)) == []


def test_refusals_leave_nothing(prog, bpffs_dir, tmp_path):
    pid = prog_id_of(prog)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    limit = int(Path("/proc/sys/kernel/perf_event_max_sample_rate").read_text())
    cases = [
        (["cpu-clock", "pid", str(gone.pid)], f"no such process: {gone.pid}"),
        (["cpu-clock", "cpu", "0", "freq", str(limit + 1)],
         f"freq {limit + 1} is above the kernel's limit of {limit} Hz (kernel.perf_event_max_sample_rate)"),
        (["cpu-clock", "link", str(tmp_path / "l")], f"can't pin the link at {tmp_path / 'l'}: {tmp_path} is not on a BPF file system"),
        (["cpu-clock", "link", str(prog)], f"can't pin the link at {prog}: the name is taken"),
    ]
    for words, message in cases:
        got = bpft("prog", "attach", "pinned", str(prog), "perf_event", *words)
        assert (got.returncode != 0, got.stderr_text) == (True, f"Error: {message}\n")
        assert links_of(pid) == []
    assert [p.name for p in prog.parent.iterdir()] == [prog.name] and list(tmp_path.iterdir()) == []
    # a machine without a hardware PMU says so; one with it attaches (and detaches)
    got = bpft("prog", "attach", "pinned", str(prog), "perf_event", "instructions", "cpu", "0", "link", str(bpffs_dir / "hw"))
    if got.returncode != 0:
        assert got.stderr_text == "Error: this machine has no hardware PMU counting instructions: it cannot sample it\n"
        assert links_of(pid) == [] and not (bpffs_dir / "hw").exists()
    else:
        assert bpft("prog", "detach", "pinned", str(prog), "perf_event", "instructions").returncode == 0


def test_wrong_program_type_and_detach_errors(prog, loaded):
    trace = loaded("attach_trace.o") / "trace_tp"
    tid = prog_id_of(trace)
    got = bpft("prog", "attach", "pinned", str(trace), "perf_event", "cpu-clock")
    assert got.stderr_text == f"Error: perf_event cpu-clock takes a perf_event program; program {tid} is tracepoint\n"
    assert links_of(tid) == []
    pid = prog_id_of(prog)
    got = bpft("prog", "detach", "pinned", str(prog), "perf_event", "cpu-clock", "cpu", "0")
    assert got.returncode != 0 and got.stderr_text.startswith("Error: detach takes 'perf_event EVENT' alone")
    got = bpft("prog", "detach", "pinned", str(prog), "perf_event", "cpu-clock")
    assert got.stderr_text == f"Error: program {pid} is not attached to perf_event cpu-clock\n"


def test_help_names_every_event():
    got = bpft("prog", "help")
    text = " ".join(got.stderr_text.split()) + " ".join(got.stdout_text.split())
    listed = text.split("PERF_EVENT := {", 1)[1].split("}", 1)[0]
    assert [word.strip() for word in listed.split("|")] == list(perf.EVENT_BY_NAME)


def test_link_object_on_perf_event_links_is_bpftools(prog, bpffs_dir):
    """``link detach``/``show``/``pin`` on the per-CPU pins: bpftool's bytes and status; and
    ``prog detach`` removes every pin of the links (an extra one too) and the directory."""
    pid = prog_id_of(prog)
    pins = bpffs_dir / "links"
    assert bpft("prog", "attach", "pinned", str(prog), "perf_event", "cpu-clock", "link", str(pins)).returncode == 0
    cpu_pins = sorted(pins.iterdir())
    first, second = cpu_pins[0], cpu_pins[-1]  # the same one on a single CPU
    for args in (
        ["link", "detach", "pinned", str(first)],  # perf-event links cannot be detached, only closed
        ["link", "show", "pinned", str(pins)],
        ["link", "pin", "pinned", str(second), str(pins)],
        ["-j", "link", "show", "pinned", str(second)],
    ):
        ours, theirs = bpft(*args), run(["bpftool", *args])
        assert (ours.returncode, ours.stdout_text, ours.stderr_text) == (theirs.returncode, theirs.stdout_text, theirs.stderr_text), args
    extra = bpffs_dir / "extra"
    assert bpft("link", "pin", "pinned", str(second), str(extra)).returncode == 0
    got = bpft("prog", "detach", "pinned", str(prog), "perf_event", "cpu-clock")
    assert got.returncode == 0, got.stderr_text
    assert links_of(pid) == [] and not pins.exists() and not extra.exists()
