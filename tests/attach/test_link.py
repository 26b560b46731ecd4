"""``bpft link``: bpftool 7.1's ``link show|list|pin|detach|help``, byte for byte, on links that
bpft made (no process holds them, so bpft's ``pids`` has nothing to add); ``--detail`` adds
each link's decoded target. And ``prog show`` of attached programs stays bpftool's."""

from __future__ import annotations

import json
import re

import pytest
from attach_helpers import bpft_cmd, prog_id_of, run
from conftest import BPF_DIR, run_bpftool

pytestmark = pytest.mark.parity


def bpft(*args: str):
    return run([*bpft_cmd(), *args])


def same(a, b):
    assert (b.returncode, b.stdout_text, b.stderr_text) == (a.returncode, a.stdout_text, a.stderr_text)


@pytest.fixture
def pinned_links(loaded, bpffs_dir):
    """Links of the three kinds attach_trace.o makes (perf_event, raw_tracepoint twice), pinned."""
    path = bpffs_dir / "auto"
    got = bpft("prog", "loadall", str(BPF_DIR / "attach_trace.o"), str(path), "autoattach")
    assert got.returncode == 0, got.stderr_text
    return path


def _link_id(pin) -> int:
    return json.loads(run_bpftool("-j", "link", "show", "pinned", str(pin), check=True).stdout_text)["id"]


@pytest.mark.parametrize("name", ["trace_tp", "trace_raw_tp", "trace_tp_btf"])
@pytest.mark.parametrize("opts", [[], ["-j"], ["-p"], ["-f"], ["-j", "-f"]])
def test_show_one_link_as_bpftool(pinned_links, name, opts):
    pin = str(pinned_links / f"{name}_link")
    lid = str(_link_id(pin))
    for handle in (["pinned", pin], ["id", lid]):
        same(run_bpftool(*opts, "link", "show", *handle), bpft(*opts, "link", "show", *handle))
    same(run_bpftool(*opts, "link", "list", "id", lid), bpft(*opts, "link", "list", "id", lid))


def test_detail_adds_the_target(pinned_links):
    pin = str(pinned_links / "trace_tp_link")
    plain = bpft("--detail", "link", "show", "pinned", pin)
    base = run_bpftool("link", "show", "pinned", pin).stdout_text
    assert plain.stdout_text == base.rstrip("\n") + "\n\ttarget tracepoint sys_enter_getppid\n"
    got = json.loads(bpft("-j", "--detail", "link", "show", "pinned", pin).stdout_text)
    assert got["target"] == "tracepoint sys_enter_getppid"


@pytest.mark.parametrize(
    "args",
    [
        ["show", "id", "abc"],
        ["show", "id", "4294967295"],
        ["show", "pinned", "/sys/fs/bpf/no_such_link_bpft"],
        ["show", "tag", "x"],
        ["show", "id", "1", "more"],
        ["detach"],
        ["detach", "id", "abc"],
        ["detach", "id", "4294967295"],
        ["pin", "id", "4294967295"],
        ["pin", "id"],
        ["help"],
        ["bogus"],
    ],
)
@pytest.mark.parametrize("opts", [[], ["-j"]])
def test_errors_and_help_as_bpftool(args, opts):
    a, b = run_bpftool(*opts, "link", *args), bpft(*opts, "link", *args)
    if args in (["help"], ["bogus"]):  # the usage names the program, and bpft lists its --table
        assert (b.returncode, b.stdout_text) == (a.returncode, a.stdout_text)
        ours = b.stderr_text.replace("bpft link", "bpftool link").replace("       FORMAT := { --table }\n", "")
        assert ours == a.stderr_text
        return
    if opts == ["-j"] and "missing\n" in a.stdout_text:
        # bpftool writes the message's newline raw inside the JSON string; bpft writes valid JSON
        assert json.loads(b.stdout_text) == {"error": "link specifier is invalid or missing\n"}
        a.stdout_text = b.stdout_text
    same(a, b)


def test_pin_then_detach_as_bpftool(pinned_links, bpffs_dir):
    pin = pinned_links / "trace_raw_tp_link"
    lid = str(_link_id(pin))
    again = bpffs_dir / "again"
    got = bpft("-j", "link", "pin", "id", lid, str(again))
    assert (got.returncode, got.stdout_text) == (0, "null\n")
    assert _link_id(again) == int(lid)
    got = bpft("link", "detach", "pinned", str(again))
    # raw_tp links: the kernel has no detach for them before 6.x; both tools say the same then
    ref = run_bpftool("link", "show", "id", lid)
    assert ref.returncode == 0
    if got.returncode != 0:
        assert got.stderr_text.startswith("Error: failed link detach: ")


def _without_run_stats(proc):
    """The programs run all the time (sys_enter) and stats may be on: their counts move."""
    proc.stdout_text = re.sub(r'(run_time_ns|run_cnt)(":| )\d+', r"\1\2N", proc.stdout_text)
    return proc


def test_prog_show_of_attached_programs_stays_bpftools(pinned_links):
    for name in ("trace_tp", "trace_raw_tp", "trace_tp_btf"):
        pid = str(prog_id_of(pinned_links / name))
        for opts in ([], ["-j"], ["-p"]):
            a = _without_run_stats(run_bpftool(*opts, "prog", "show", "id", pid))
            same(a, _without_run_stats(bpft(*opts, "prog", "show", "id", pid)))
