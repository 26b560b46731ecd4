"""Statistics are off again after ``bpft prog top`` ends: normally, on SIGTERM, on SIGKILL.

Checked on the kernel: a program driven after bpft is gone gains no run count,
and the sysctl ``kernel.bpf_stats_enabled`` is back to what it was.

Other test sessions on this machine hold statistics on at times (``prog
profile ... stats`` holds an ENABLE_STATS fd; a fallback sets the sysctl).
While anyone else holds them, a driven program's counters grow whatever bpft
did, so the kernel check waits for a moment when nobody holds them (no process
has a ``bpf-stats`` fd and the sysctl reads 0), and skips only if none comes.
A process of ours that still held them would never let that moment come, so
the holders are checked first: none of them may be a ``bpft prog top``.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from bpft.kernel import info, syscall
from conftest import bpft_cmd, reaped
from top_kit import drive, load_return_zero

SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"


def read_sysctl() -> int:
    with open(SYSCTL) as f:
        return int(f.read())


def stats_holders() -> dict[int, list[str]]:
    """{pid: command line} of every process with a BPF_ENABLE_STATS fd open."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{name}/fd")
            for fd in fds:
                if os.readlink(f"/proc/{name}/fd/{fd}") == "anon_inode:bpf-stats":
                    with open(f"/proc/{name}/cmdline", "rb") as f:
                        found[int(name)] = f.read().decode(errors="replace").split("\0")
                    break
        except OSError:
            continue
    return found


def is_top(cmdline: list[str]) -> bool:
    return "top" in cmdline and any("bpft" in word for word in cmdline)


def counters(fd: int) -> tuple[int, int]:
    i = info.prog_info(fd)
    return i.run_cnt, i.run_time_ns


@pytest.fixture
def prog_fd():
    fd = load_return_zero("bpft_top_stats")
    yield fd
    os.close(fd)


def assert_stats_off(fd: int, gone_pid: int) -> None:
    """bpft (``gone_pid``) is gone and holds nothing; when nobody else holds statistics on,
    a driven program's counters stay still."""
    assert not os.path.exists(f"/proc/{gone_pid}/fd")
    for _ in range(80):
        holders = stats_holders()
        assert not [cmd for cmd in holders.values() if is_top(cmd)], holders
        if not holders and read_sysctl() == 0:
            before = counters(fd)
            drive(fd, 200)
            after = counters(fd)
            if not stats_holders() and read_sysctl() == 0:  # nobody came meanwhile
                assert after == before, "statistics still on after bpft ended"
                return
        time.sleep(0.25)
    pytest.skip(f"statistics were held on by others throughout: {stats_holders()}, sysctl {read_sysctl()}")


def wait_first_line(proc: subprocess.Popen) -> str:
    line = proc.stdout.readline()
    assert line.startswith('{"time":'), (line, proc.stderr.read() if proc.poll() is not None else "")
    return line


ENDINGS = ["count", "sigterm", "sigkill"]


def end(proc: subprocess.Popen, how: str) -> int:
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)
    elif how == "sigkill":
        proc.kill()
    return proc.wait(timeout=30)


EXPECTED_STATUS = {"count": 0, "sigterm": 128 + signal.SIGTERM, "sigkill": -signal.SIGKILL}


@pytest.mark.kernel
@pytest.mark.parametrize("how", ENDINGS)
def test_enable_stats_fd_is_dropped_however_bpft_ends(prog_fd, how):
    prog_id = info.prog_info(prog_fd).id
    count = ["count", "5"] if how == "count" else []  # time enough for the checks while it runs
    proc = subprocess.Popen(
        [*bpft_cmd(), "-j", "prog", "top", "id", str(prog_id), "interval", "0.3", *count],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with reaped(proc):
        wait_first_line(proc)
        # while it runs, bpft holds statistics on through its own fd
        assert proc.pid in stats_holders()
        before = counters(prog_fd)
        drive(prog_fd, 100)
        assert counters(prog_fd)[0] == before[0] + 100
        assert end(proc, how) == EXPECTED_STATUS[how]
    if how != "sigkill":
        assert proc.stderr.read() == ""
    assert_stats_off(prog_fd, proc.pid)


# bpft with BPF_ENABLE_STATS refused, as on kernels before 5.8: the sysctl stands in
FALLBACK = textwrap.dedent(
    """
    import errno, sys
    from bpft.kernel import syscall

    def refused(stats_type=0):
        raise syscall.BpfError(errno.EINVAL, syscall.ENABLE_STATS)

    syscall.enable_stats = refused
    from bpft import cli
    sys.exit(cli.main(sys.argv[1:]))
    """
)


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(n) for n in f.read().split()]
    except OSError:
        return []


@pytest.mark.kernel
@pytest.mark.parametrize("how", [*ENDINGS, "sigint"])
def test_sysctl_fallback_is_restored_however_bpft_ends(prog_fd, how):
    if read_sysctl() != 0:
        pytest.skip("kernel.bpf_stats_enabled is 1: someone else holds it, and restoring it is theirs")
    prog_id = info.prog_info(prog_fd).id
    count = ["count", "5"] if how == "count" else []  # time enough for the checks while it runs
    proc = subprocess.Popen(
        [sys.executable, "-c", FALLBACK, "-d", "-j", "prog", "top", "id", str(prog_id), "interval", "0.3", *count],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    guardians: list[int] = []
    with reaped(proc):
        wait_first_line(proc)
        assert read_sysctl() == 1
        assert proc.pid not in stats_holders()  # the fd was refused: the sysctl holds them on
        guardians = children(proc.pid)
        assert len(guardians) == 1  # the guardian that restores the sysctl after a SIGKILL
        before = counters(prog_fd)
        drive(prog_fd, 100)
        assert counters(prog_fd)[0] == before[0] + 100
        if how == "sigint":
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0
        else:
            assert end(proc, how) == EXPECTED_STATUS[how]
    if how == "sigkill":  # the guardian sees its pipe close and writes the old value back
        deadline = time.monotonic() + 10
        while read_sysctl() != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    else:
        stderr = proc.stderr.read()
        assert "top: statistics on through sysctl (BPF_ENABLE_STATS: Invalid argument)" in stderr
    assert read_sysctl() == 0
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{pid}/fd") for pid in guardians) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in guardians if os.path.exists(f"/proc/{pid}/fd")], "the guardian outlived bpft"
    assert_stats_off(prog_fd, proc.pid)


def test_refusals_of_both_switches_are_one_error(tmp_path, monkeypatch):
    from bpft.errors import BpftError
    from bpft_top import stats

    def refused(stats_type=0):
        raise syscall.BpfError(errno.EPERM, syscall.ENABLE_STATS)

    monkeypatch.setattr(syscall, "enable_stats", refused)
    session = stats.StatsSession(sysctl_path=str(tmp_path / "missing"))
    with pytest.raises(BpftError) as got:
        session.start()
    assert got.value.message == (
        f"cannot enable BPF statistics: BPF_ENABLE_STATS: Operation not permitted, and {tmp_path}/missing cannot be read"
    )
    already = tmp_path / "on"
    already.write_text("1\n")
    session = stats.StatsSession(sysctl_path=str(already))
    assert session.start() is stats.StatsSource.ALREADY_ON
    session.close()
    assert already.read_text() == "1\n"  # it was on before: left on
