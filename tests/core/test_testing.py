"""bpft.testing.run: in-process runs, many in one process, nothing left behind."""

from __future__ import annotations

import json
import os

import pytest
from bpft import api
from bpft.testing import run
from platform_plugins import loaded_program, open_fds


def test_captures_status_and_both_streams():
    status, out, err = run(["prog", "help"])
    assert status == 0 and out == "" and err.startswith("Usage: bpft prog { show | list } [PROG]\n")
    assert run(["-j", "prog", "help"]) == (0, "null\n", "")
    assert run(["prog", "nonsense"])[0] == 255


def test_installed_false_runs_with_the_core_only():
    status, _, err = run(["prog", "show"], installed=False)
    assert status == 255 and err == "Error: 'show' is not installed: it comes with bpft-show (pip install bpft-show)\n"


@pytest.mark.kernel
def test_many_runs_leave_nothing_behind():
    with loaded_program("testing_many") as prog_id:
        run(["prog", "show"])  # the first run imports what it needs
        before = open_fds()
        for _ in range(25):
            status, out, _ = run(["-j", "prog", "show", "id", str(prog_id)])
            assert status == 0 and json.loads(out)["id"] == prog_id
            status, out, _ = run(["prog", "show"])
            assert status == 0 and f"{prog_id}: socket_filter  name testing_many" in out
        assert open_fds() == before
    assert api._current == []  # no context left active
    assert os.get_blocking(1) is not None  # the process's own stdout is untouched


def test_a_verb_that_raises_does_not_leak_the_context():
    run(["prog", "show", "id", "nope"])
    assert api._current == []
