"""The example plugin, tested in-process with bpft.testing.run, as a third party would."""

import json
import os

import bpft
import pytest
from bpft.testing import run
from bpft_count import plugin

FAKE = [bpft.Program(i, t, f"p{i}", "00" * 8) for i, t in enumerate("xxy")]


@pytest.fixture
def fake_progs(monkeypatch):
    monkeypatch.setattr(bpft, "iter_progs", lambda: iter(FAKE))


def test_listed_in_help_after_show():
    status, _, err = run(["prog", "help"], plugins=[plugin])
    assert status == 0
    lines = err.splitlines()
    count = lines.index("       bpft prog count [--type TYPE]")
    assert "{ show | list }" in lines[count - 1]


def test_counts_by_type_plain_and_json(fake_progs):
    assert run(["prog", "count"], plugins=[plugin]) == (0, "x 2\ny 1\n", "")
    assert run(["-j", "prog", "count", "-t", "y"], plugins=[plugin]) == (0, '{"y":1}\n', "")
    assert run(["prog", "count", "--type", "x", "-j"], plugins=[plugin]) == (0, '{"x":2}\n', "")


def test_typer_help_and_errors():
    status, out, _ = run(["prog", "count", "--help"], plugins=[plugin])
    assert status == 0 and "--type" in out and "Count the loaded programs by type." in out
    status, _, err = run(["prog", "count", "--nonsense"], plugins=[plugin])
    assert status == 2 and "--nonsense" in err


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_counts_a_program_we_load():
    from bpft.kernel import syscall

    fd = syscall.prog_load_simple(1, bytes.fromhex("b7000000000000009500000000000000"), name="count_me")
    try:
        status, out, _ = run(["-j", "prog", "count", "--type", "socket_filter"], plugins=[plugin])
    finally:
        os.close(fd)
    assert status == 0 and json.loads(out)["socket_filter"] >= 1
