"""Forked workers: how many, and what a forked process may not inherit."""

from __future__ import annotations

import os

import pytest


@pytest.mark.parametrize(("env", "expected"), [("3", 3), ("1", 1), ("", None), ("0", None), ("two", None)])
def test_forced_workers_from_the_environment(monkeypatch, env, expected):
    from bpft.parallel import MIN_ITEMS, forced_workers, worker_count

    monkeypatch.setenv("BPFT_WORKERS", env)
    assert forced_workers() == expected
    if expected:
        assert worker_count(10) == min(expected, 10)  # forced, however few the items
    else:
        assert worker_count(MIN_ITEMS - 1) == 1  # bpft's own choice: too few to fork


def test_fdinfo_in_a_forked_child_reads_the_childs_fds():
    """fdinfo_value keeps a directory fd on /proc/self/fdinfo; /proc/self meant the parent when
    it was opened, so a child must open its own (an fd it opens does not exist in the parent)."""
    from bpft.kernel import fs

    r, w = os.pipe()
    try:
        assert fs.fdinfo_value(r, "flags") is not None  # the parent's directory fd is now cached
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                new_r, new_w = os.pipe()  # fds the parent does not have
                ok = fs.fdinfo_value(new_r, "flags") is not None and fs.fdinfo_value(new_w, "pos") == "0"
                status = 0 if ok else 2
            finally:
                os._exit(status)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(r)
        os.close(w)


def _part(i: int, fail_at: int = -1):
    def render():
        import time

        time.sleep(0.003)  # long enough that every process gets parts
        if i == fail_at:
            return [f"{i}:partial"], f"part {i} failed", 7
        return [f"{i}:{os.getpid()}", f"{i}:end"], None, 0

    return render


@pytest.mark.parametrize("workers", [1, 2, 3, 4])
def test_parts_from_the_queue_come_back_in_order(workers):
    from bpft.parallel import render_partitions

    texts = [t for chunk in render_partitions([_part(i) for i in range(23)], workers) for t in chunk]
    assert [t.split(":")[0] for t in texts] == [str(i) for i in range(23) for _ in range(2)]
    pids = {t.split(":")[1] for t in texts if not t.endswith(":end")}
    assert len(pids) == workers  # every process took parts
    assert str(os.getpid()) in pids


@pytest.mark.parametrize("workers", [1, 3])
def test_a_failing_part_ends_the_output_there(workers):
    from bpft.errors import BpftError
    from bpft.parallel import render_partitions

    got = []
    with pytest.raises(BpftError) as err:
        for chunk in render_partitions([_part(i, fail_at=9) for i in range(20)], workers):
            got.extend(chunk)
    assert err.value.message == "part 9 failed" and err.value.exit_code == 7
    assert [t.split(":")[0] for t in got] == [str(i) for i in range(9) for _ in range(2)] + ["9"]
    assert got[-1] == "9:partial"


def test_fdinfo_reads_whatever_holds_the_number_now():
    """fdinfo_value keeps /proc/self/fdinfo/N open and re-reads it: procfs prints the file that
    holds N at the time of the read, so the value follows the number (as a fresh open would)."""
    from bpft.kernel import fs

    r, w = os.pipe()
    try:
        assert fs.fdinfo_value(r, "flags").endswith("0")  # the read end: O_RDONLY
        assert r in fs._fdinfo_files  # kept for the next file at this number
        os.dup2(w, r)  # the write end now holds the number
        assert fs.fdinfo_value(r, "flags").endswith("1")  # O_WRONLY
        os.close(r)
        assert fs.fdinfo_value(r, "flags") is None  # nothing holds it
    finally:
        for fd in (r, w):
            try:
                os.close(fd)
            except OSError:
                pass
