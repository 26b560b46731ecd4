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
