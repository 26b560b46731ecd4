"""`bpft prog profile`: the generated programs, perf attrs, arithmetic and output,
the refusal on this kernel, and the BPF-stats metric on a program driven by `prog run`.

bpftool v7.1 here is built without skeletons and has no profile, so the
references are the kernel (the generated code runs through the verifier and
test_run as raw_tp programs), the UAPI header, and a C program printing the
readings with bpftool's printf formats (readings_printer.c).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest
from bpft import insn as I  # noqa: N812
from bpft_profile import profile as P
from bpft_profile import progs
from conftest import bpft_cmd, prog_id_of, reaped, run_bpft, run_bpftool

HERE = Path(__file__).resolve().parent


# --- metrics and perf attrs ------------------------------------------------------------


def test_parse_metrics():
    assert P.parse_metrics(["cyc", "instructions"]) == ([0, 1], False)
    assert P.parse_metrics(["llc_misses", "c", "cycles"]) == ([0, 3], False)  # table order, no duplicates
    assert P.parse_metrics(["stats"]) == ([], True)
    assert P.parse_metrics(["st", "i"]) == ([1], True)
    with pytest.raises(P.BpftError, match="^unknown metric bogus$"):
        P.parse_metrics(["cycles", "bogus"])
    with pytest.raises(P.BpftError, match=r"too many \(5\) metrics, please specify no more than 4"):
        P.parse_metrics(["cycles", "instructions", "l1d", "llc", "itlb"])


def _uapi_enums() -> dict[str, int]:
    """Enumerators of linux/perf_event.h, parsed from the installed UAPI header."""
    path = Path("/usr/include/linux/perf_event.h")
    if not path.exists():
        pytest.skip("no linux/perf_event.h")
    out = {}
    for name, value in re.findall(r"^\s*(PERF_[A-Z0-9_]+)\s*=\s*([0-9xa-fA-F]+)\s*,", path.read_text(), re.M):
        out[name] = int(value, 0)
    return out


def test_perf_attrs_match_uapi():
    e = _uapi_enums()
    want = {
        "cycles": (e["PERF_TYPE_HARDWARE"], e["PERF_COUNT_HW_CPU_CYCLES"]),
        "instructions": (e["PERF_TYPE_HARDWARE"], e["PERF_COUNT_HW_INSTRUCTIONS"]),
    }
    for name, cache, result in [
        ("l1d_loads", "L1D", "ACCESS"),
        ("llc_misses", "LL", "MISS"),
        ("itlb_misses", "ITLB", "MISS"),
        ("dtlb_misses", "DTLB", "MISS"),
    ]:
        config = (
            e[f"PERF_COUNT_HW_CACHE_{cache}"]
            | e["PERF_COUNT_HW_CACHE_OP_READ"] << 8
            | e[f"PERF_COUNT_HW_CACHE_RESULT_{result}"] << 16
        )
        want[name] = (e["PERF_TYPE_HW_CACHE"], config)
    want["task_clock"] = (e["PERF_TYPE_SOFTWARE"], e["PERF_COUNT_SW_TASK_CLOCK"])
    want["cpu_clock"] = (e["PERF_TYPE_SOFTWARE"], e["PERF_COUNT_SW_CPU_CLOCK"])
    assert [m.name for m in P.METRICS] == list(want)
    for m in P.METRICS:
        attr = P.perf_attr(m)
        raw = bytes(attr)
        typ, size, config = struct.unpack_from("<IIQ", raw)
        assert (typ, config) == want[m.name]
        assert size == len(raw) == 136  # PERF_ATTR_SIZE_VER8
        flags = struct.unpack_from("<Q", raw, 40)[0]
        assert flags == 1 << 4  # exclude_user only: counting starts enabled, kernel side


# --- the generated programs --------------------------------------------------------------

MAPS = progs.Maps(events=11, fentry_readings=12, accum_readings=13, counts=14)


def _calls(insns: list[I.Insn]) -> list[int]:
    return [x.imm for x in insns if x.code == I.BPF_JMP | I.BPF_CALL]


def _map_loads(insns: list[I.Insn]) -> list[int]:
    return [x.imm for x in insns if x.is_ld_imm64 and x.src_reg == I.BPF_PSEUDO_MAP_FD]


@pytest.mark.parametrize("num_metric", [1, 2, 4])
def test_generated_programs_decode(num_metric):
    """Decode the encoded programs and check what they call, which maps, which indexes, where jumps land."""
    ncpu = 6
    for gen in (progs.fentry, progs.fexit):
        code = I.encode_all(gen(MAPS, ncpu, num_metric))
        insns = I.decode_all(code)
        assert len(code) % 8 == 0 and insns[-1].code == I.BPF_JMP | I.BPF_EXIT
        assert insns[-2] == I.Insn(I.BPF_ALU64 | I.BPF_MOV | I.BPF_K, 0, 0, 0, 0)  # return 0
        # every jump lands inside the program, on an instruction start (not the 2nd ld_imm64 slot)
        starts, i = set(), 0
        while i < len(insns):
            starts.add(i)
            i += 2 if insns[i].is_ld_imm64 else 1
        for pc, x in enumerate(insns):
            if pc in starts and x.cls == I.BPF_JMP and x.code & 0xF0 not in (I.BPF_CALL, I.BPF_EXIT):
                assert pc + 1 + x.off in starts
        # the per-metric perf event index: cpu + i * num_cpu
        adds = [x.imm for x in insns if x.code == I.BPF_ALU64 | I.BPF_ADD | I.BPF_K and x.dst_reg == 2]
        assert [a for a in adds if a >= 0] == [i * ncpu for i in range(num_metric)]
        calls = _calls(insns)
        assert calls[0] == progs.FUNC_GET_SMP_PROCESSOR_ID
        assert calls.count(progs.FUNC_PERF_EVENT_READ_VALUE) == num_metric
        loads = _map_loads(insns)
        assert loads.count(MAPS.events) == num_metric
        if gen is progs.fentry:
            # lookups first (out of the measured window), then the reads
            assert calls[1:] == [1] * num_metric + [55] * num_metric
            assert loads == [MAPS.fentry_readings] * num_metric + [MAPS.events] * num_metric
        else:
            assert calls[1:] == [55] * num_metric + [1] + [1, 1] * num_metric
            assert (
                loads
                == [MAPS.events] * num_metric
                + [MAPS.counts]
                + [
                    MAPS.fentry_readings,
                    MAPS.accum_readings,
                ]
                * num_metric
            )


@pytest.mark.kernel
def test_generated_programs_run_in_the_kernel():
    """The kernel refuses fentry/fexit here, so load the same code as raw_tp programs (same
    helpers, same verifier), with software cpu-clock events in the perf-event array, and run
    them with test_run: fentry snapshots, fexit counts and accumulates after - before."""
    from bpft.kernel import perf
    from bpft.kernel import syscall as sc

    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(old)})  # fentry and fexit runs on one CPU, as in the kernel
    fds = []
    try:
        ncpu, nm = perf.possible_cpus(), 2
        m = progs.Maps(
            sc.map_create(4, 4, 4, ncpu * nm),
            sc.map_create(6, 4, 24, nm),
            sc.map_create(6, 4, 24, nm),
            sc.map_create(6, 4, 8, 1),
        )
        fds += list(m)
        for i in range(nm):
            for cpu in range(ncpu):
                ev = perf.perf_event_open(perf.make_attr(perf.TYPE_SOFTWARE, 0), -1, cpu)  # cpu-clock
                fds.append(ev)
                sc.map_update_elem(m.events, struct.pack("<I", i * ncpu + cpu), struct.pack("<I", ev))
                perf.enable(ev)
        entry = sc.prog_load_simple(17, I.assemble(progs.fentry(m, ncpu, nm)), log_size=1 << 20)
        fds.append(entry)
        leave = sc.prog_load_simple(17, I.assemble(progs.fexit(m, ncpu, nm)), log_size=1 << 20)
        fds.append(leave)
        runs = 5
        for _ in range(runs):
            sc.prog_test_run(sc.TestRunAttr(prog_fd=entry))
            before = [
                struct.unpack(f"<{3 * ncpu}Q", sc.map_lookup_elem(m.fentry_readings, struct.pack("<I", i), 24 * ncpu))
                for i in range(nm)
            ]
            acc0 = [
                struct.unpack(f"<{3 * ncpu}Q", sc.map_lookup_elem(m.accum_readings, struct.pack("<I", i), 24 * ncpu))
                for i in range(nm)
            ]
            sc.prog_test_run(sc.TestRunAttr(prog_fd=leave))
            acc1 = [
                struct.unpack(f"<{3 * ncpu}Q", sc.map_lookup_elem(m.accum_readings, struct.pack("<I", i), 24 * ncpu))
                for i in range(nm)
            ]
            for i in range(nm):
                assert any(before[i])  # fentry stored a reading for this metric
                delta = [b - a for a, b in zip(acc0[i], acc1[i], strict=True)]
                assert sum(delta[0::3]) > 0  # cpu-clock advanced between the runs: accumulated
                assert sum(delta[1::3]) >= sum(delta[2::3]) > 0  # enabled >= running
        counts = struct.unpack(f"<{ncpu}Q", sc.map_lookup_elem(m.counts, bytes(4), 8 * ncpu))
        assert sum(counts) == runs
    except OSError as e:
        if getattr(e, "log", ""):
            raise AssertionError(e.log) from None
        raise
    finally:
        os.sched_setaffinity(0, old)
        for fd in fds:
            os.close(fd)


# --- arithmetic and output ------------------------------------------------------------------


@pytest.fixture(scope="module")
def c_printer(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        pytest.skip("no C compiler for the reference printer")
    exe = tmp_path_factory.mktemp("printer") / "readings_printer"
    subprocess.run([cc, "-O0", "-o", str(exe), str(HERE / "readings_printer.c")], check=True)
    return exe


def test_plain_output_matches_c_printf(c_printer):
    """Recorded readings (random and edge cases) rendered by bpft and by C's printf, as bpftool does."""
    rng = random.Random(5)
    cases = [
        (0, {0: P.Reading(0, 0, 0), 1: P.Reading(0, 0, 0)}),  # nothing ran: no ratio
        (51397, {0: P.Reading(12345678, 100, 100), 1: P.Reading(9876543, 100, 100), 3: P.Reading(123, 100, 40)}),
        (7, {1: P.Reading(1000, 5, 5), 3: P.Reading(3, 5, 5)}),
        (1, {2: P.Reading(2**64 - 1, 2**63, 1)}),
    ]
    for _ in range(200):
        sel = rng.sample(range(6), rng.randint(1, 4))
        big = rng.choice([10, 10**6, 10**12, 2**63])
        cases.append(
            (
                rng.randrange(big),
                {m: P.Reading(rng.randrange(big), e := rng.randrange(1, big), rng.randrange(e + 1)) for m in sel},
            )
        )
    for run_cnt, readings in cases:
        argv = [str(run_cnt)]
        for m in range(6):
            r = readings.get(m)
            argv += ["1", str(r.counter), str(r.enabled), str(r.running)] if r else ["0", "0", "0", "0"]
        ref = subprocess.run([str(c_printer), *argv], capture_output=True, check=True).stdout.decode()
        assert P.plain_readings(run_cnt, readings) == ref, (run_cnt, readings)


def test_json_output_shape():
    """bpftool's JSON objects: metric, run_cnt, value, enabled, running, in table order."""
    from bpft.output import JsonWriter

    readings = {3: P.Reading(3, 9, 8), 0: P.Reading(100, 9, 9)}
    w = JsonWriter()
    w.value(P.json_readings(42, readings))
    data = json.loads(w.take())
    assert [list(o) for o in data] == [["metric", "run_cnt", "value", "enabled", "running"]] * 2
    assert [(o["metric"], o["run_cnt"], o["value"], o["enabled"], o["running"]) for o in data] == [
        ("cycles", 42, 100, 9, 9),
        ("llc_misses", 42, 3, 9, 8),
    ]


# --- the whole hardware path against a recording kernel --------------------------------------


class RecordingKernel(P.Kernel):
    """Real program info and BTF; everything else recorded, with readings from a script."""

    def __init__(self, ncpu, counts, accum):
        super().__init__()
        self.ncpu, self.counts, self.accum = ncpu, counts, accum
        self.log: list[tuple] = []
        self.next_fd = 1000
        self.open_fds: set[int] = set()

    def _fd(self):
        self.next_fd += 1
        self.open_fds.add(self.next_fd)
        return self.next_fd

    def num_cpus(self):
        return self.ncpu

    def map_create(self, *a):
        fd = self._fd()
        self.log.append(("map", fd, *a))
        return fd

    def prog_load(self, insns, name, attach_type, btf_id, target_fd):
        fd = self._fd()
        self.log.append(("load", fd, I.decode_all(insns), name, attach_type, btf_id, target_fd))
        return fd

    def perf_event_open(self, attr, cpu):
        fd = self._fd()
        self.log.append(("perf", fd, attr.type, attr.config, cpu))
        return fd

    def map_update(self, map_fd, key, value):
        self.log.append(("update", map_fd, key, value))

    def enable(self, fd):
        self.log.append(("enable", fd))

    def attach(self, prog_fd):
        fd = self._fd()
        self.log.append(("attach", fd, prog_fd))
        return fd

    def lookup(self, map_fd, key, size):
        maps = {x[6]: x[1] for x in self.log if x[0] == "map"}
        assert map_fd in (maps["counts"], maps["accum_readings"])
        if map_fd == maps["counts"]:
            return struct.pack(f"<{self.ncpu}Q", *self.counts)
        return b"".join(struct.pack("<QQQ", *r) for r in self.accum[key])

    def close(self, fd):
        self.log.append(("close", fd))
        self.open_fds.discard(fd)


def _mapname(log, fd):
    return next(x[6] for x in log if x[0] == "map" and x[1] == fd)


@pytest.mark.kernel
def test_hardware_path_with_recorded_readings(loaded, monkeypatch, capsys, c_printer):
    """The steps bpftool's skeleton takes, in order, then readings summed per CPU and printed."""
    from bpft import cli
    from bpft.kernel import info
    from bpft.kernel import syscall as sc

    pin = loaded("run_progs.o") / "run_xdp"
    ncpu = 3
    accum = {0: [(10, 5, 5), (20, 5, 5), (30, 5, 4)], 1: [(1, 1, 1), (2, 2, 2), (3, 3, 3)]}
    rec = RecordingKernel(ncpu, [4, 0, 3], accum)
    monkeypatch.setattr(P, "Kernel", lambda: rec)
    rc = cli.main(["prog", "profile", "pinned", str(pin), "duration", "0", "instr", "cycles"])
    captured = capsys.readouterr()
    out = captured.out
    assert rc == 0, captured.err
    log = rec.log
    maps = [x for x in log if x[0] == "map"]
    assert [(x[6], x[2], x[3], x[4], x[5]) for x in maps] == [
        ("events", 4, 4, 4, 2 * ncpu),
        ("fentry_readings", 6, 4, 24, 2),
        ("accum_readings", 6, 4, 24, 2),
        ("counts", 6, 4, 8, 1),
    ]
    fd = sc.obj_get(str(pin))
    try:
        func_type = P.Kernel().func_type_id(fd)
        prog_id = info.prog_info(fd).id
    finally:
        os.close(fd)
    loads = [x for x in log if x[0] == "load"]
    assert [(x[3], x[4], x[5]) for x in loads] == [("fentry_run_xdp", 24, func_type), ("fexit_run_xdp", 25, func_type)]
    for x in loads:  # attach_prog_fd is an fd on the target
        assert x[6] >= 0
        m = _map_loads(x[2])
        assert set(m) <= {y[1] for y in maps}
    perfs = [x for x in log if x[0] == "perf"]
    assert [(x[2], x[3], x[4]) for x in perfs] == [(0, 0, c) for c in range(ncpu)] + [(0, 1, c) for c in range(ncpu)]
    updates = [x for x in log if x[0] == "update"]
    assert [(x[2], x[3]) for x in updates] == [(k, p[1]) for k, p in enumerate(perfs)]
    assert all(_mapname(log, x[1]) == "events" for x in updates)
    kinds = [x[0] for x in log if x[0] != "close"]
    assert kinds.index("attach") > max(i for i, k in enumerate(kinds) if k in ("perf", "enable"))
    assert [x[2] for x in log if x[0] == "attach"] == [loads[0][1], loads[1][1]]
    # perf events closed before the maps are read; everything closed at the end
    first_close = next(i for i, x in enumerate(log) if x[0] == "close")
    assert {x[1] for x in log[first_close : first_close + 2 * ncpu]} == {p[1] for p in perfs}
    assert not rec.open_fds
    # output: the sums per CPU, printed as C prints them
    argv = ["7", "1", "60", "15", "14", "1", "6", "6", "6"] + ["0"] * 16
    ref = subprocess.run([str(c_printer), *argv], capture_output=True, check=True).stdout.decode()
    assert out == ref
    rc = cli.main(["-j", "prog", "profile", "pinned", str(pin), "duration", "0", "cycles", "instructions"])
    data = json.loads(capsys.readouterr().out)
    assert data == [
        {"metric": "cycles", "run_cnt": 7, "value": 60, "enabled": 15, "running": 14},
        {"metric": "instructions", "run_cnt": 7, "value": 6, "enabled": 6, "running": 6},
    ]
    assert prog_id


# --- on this kernel -----------------------------------------------------------------------------


@pytest.fixture
def xdp(loaded):
    return str(loaded("run_progs.o") / "run_xdp")


@pytest.mark.kernel
def test_hardware_metrics_refused_clearly(xdp):
    """Here the kernel refuses fentry (lockdown) — or, elsewhere, the PMU is missing: the step is named."""
    for flags in ([], ["-j"]):
        res = run_bpft(*flags, "prog", "profile", "pinned", xdp, "duration", "1", "cycles")
        assert b"Traceback" not in res.stderr
        if res.returncode == 0:
            pytest.skip("this kernel allows fentry and has a PMU: profile works here")
        assert res.returncode == 255
        msg = json.loads(res.stdout)["error"] if flags else res.stderr_text
        assert "cannot profile: " in msg
        assert re.search(
            r"(loading the fentry program for 'run_xdp' \(BPF_PROG_LOAD|opening the cycles perf event on CPU)", msg
        )
        assert "'stats' metric" in msg


@pytest.mark.kernel
def test_no_btf_target(loaded):
    pin = str(loaded("run_nobtf.o") / "run_nobtf")
    res = run_bpft("prog", "profile", "pinned", pin, "duration", "0", "cycles")
    assert res.returncode == 255 and b"Traceback" not in res.stderr
    assert res.stderr_text.startswith(f"Error: program {prog_id_of(pin)} (run_nobtf) has no BTF: ")
    ok = run_bpft("prog", "profile", "pinned", pin, "duration", "0", "stats")  # stats need no BTF
    assert ok.returncode == 0, ok.stderr_text


@pytest.mark.kernel
def test_bad_input(xdp):
    cases = [
        (["prog", "profile"], 234, "Error: 'profile' needs at least 3 arguments, 0 found\n"),
        (["prog", "profile", "pinned", xdp], 234, "Error: 'profile' needs at least 3 arguments, 2 found\n"),
        (["prog", "profile", "pinned", xdp, "bogus"], 255, "Error: unknown metric bogus\n"),
        (["prog", "profile", "pinned", xdp, "duration", "1", "cycles", "bogus"], 255, "Error: unknown metric bogus\n"),
        (["prog", "profile", "pinned", xdp, "duration", "5"], 255, "Error: unknown metric duration\n"),
        (
            ["prog", "profile", "pinned", xdp, "cycles", "instructions", "l1d", "llc", "itlb"],
            255,
            "Error: too many (5) metrics, please specify no more than 4 metrics at at time\n",
        ),
        (["prog", "profile", "id", "0x", "cycles"], 255, "Error: can't parse 0x as ID\n"),
    ]
    for argv, rc, err in cases:
        res = run_bpft(*argv)
        assert (res.returncode, res.stderr_text) == (rc, err), argv
    res = run_bpft("prog", "profile", "pinned", xdp, "duration", "1x", "cycles")
    assert res.returncode == 255 and res.stderr_text.startswith("Usage: bpft")
    assert b"Traceback" not in res.stderr


def _run_cnt(prog_id: int) -> int:
    """run_cnt as bpftool shows it (absent when zero)."""
    return json.loads(run_bpftool("-j", "prog", "show", "id", str(prog_id), check=True).stdout).get("run_cnt", 0)


@pytest.mark.parity
@pytest.mark.parametrize("flags", [[], ["-j"]])
def test_stats_profile_on_program_driven_by_prog_run(xdp, tmp_path, flags):
    """`profile ... stats` while `prog run` drives the program: the run count is exactly what ran,
    and agrees with the change in bpftool's run_cnt over the same window."""
    prog_id = prog_id_of(xdp)
    data = tmp_path / "pkt"
    data.write_bytes(bytes(64))
    proc = subprocess.Popen(
        [*bpft_cmd(), "-d", *flags, "prog", "profile", "pinned", xdp, "duration", "3", "stats"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    with reaped(proc):
        # wait until counting has started (the -d line), then drive the program
        line = b""
        deadline = time.monotonic() + 20
        while b"counting started" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
        assert b"counting started" in line
        before = _run_cnt(prog_id)
        runs = [
            run_bpft("prog", "run", "pinned", xdp, "data_in", str(data), "repeat", str(n), check=True)
            for n in (100, 250, 1)
        ]
        after = _run_cnt(prog_id)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert len(runs) == 3 and after - before == 351
    if flags:
        (res,) = json.loads(out)
        assert res["metric"] == "stats" and res["source"] == "bpf_stats"
        assert res["run_cnt"] == 351
        assert res["run_time_ns"] > 0 and abs(res["avg_run_time_ns"] - res["run_time_ns"] / 351) < 0.01
        assert res["duration_ns"] >= 3e9
    else:
        text = out.decode()
        assert text.startswith("\nBPF stats (the kernel's run count and run time, not hardware counters), over ")
        lines = text.splitlines()
        assert lines[2].split() == ["351", "run_cnt"]
        value, name, _, avg = lines[3].split()[:4]
        assert name == "run_time_ns" and int(value) > 0
        assert f"{int(value) / 351:.2f}" == avg


@pytest.mark.kernel
def test_ctrl_c_ends_profile_with_results(xdp):
    import signal

    proc = subprocess.Popen(
        [*bpft_cmd(), "-d", "-j", "prog", "profile", "pinned", xdp, "stats"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    with reaped(proc):
        while b"counting started" not in proc.stderr.readline():
            assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and b"Traceback" not in err
    assert json.loads(out)[0]["run_cnt"] == 0
