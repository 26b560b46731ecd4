"""``prog loadall OBJ PATH autoattach``: a link pinned beside each program that its section
places (PATH/NAME_link), and those links fire; programs without a place stay pinned as
programs, as bpftool says; a program that cannot be attached fails the whole command and
leaves nothing pinned or attached. bpftool#160 (a kretprobe's unpinnable perf-event
fallback) cannot happen: bpft attaches kprobes only through perf-event links."""

from __future__ import annotations

import os

import pytest
from attach_helpers import bpft_cmd, count, links_of, prog_id_of, run
from conftest import BPF_DIR

pytestmark = pytest.mark.kernel


def bpft(*args: str):
    return run([*bpft_cmd(), *args])


def test_autoattach_pins_a_link_per_program_and_they_fire(bpffs_dir):
    path = bpffs_dir / "auto"
    got = bpft("prog", "loadall", str(BPF_DIR / "attach_trace.o"), str(path), "autoattach")
    assert (got.returncode, got.stdout_text, got.stderr_text) == (0, "", ""), got.stderr_text
    names = ["trace_raw_tp", "trace_tp", "trace_tp_btf"]
    assert sorted(p.name for p in path.iterdir()) == sorted(names + [n + "_link" for n in names])
    for slot, name in enumerate(["trace_tp", "trace_raw_tp", "trace_tp_btf"]):
        prog = path / name
        [link] = links_of(prog_id_of(prog))
        shown = run(["bpftool", "-j", "link", "show", "pinned", str(path / f"{name}_link")])
        assert f'"id":{link["id"]},' in shown.stdout_text
        before = count(prog, slot)
        os.getppid()
        assert count(prog, slot) > before, name


def test_autoattach_says_which_programs_have_no_place(bpffs_dir):
    path = bpffs_dir / "net"
    got = bpft("prog", "loadall", str(BPF_DIR / "attach_net.o"), str(path), "autoattach")
    assert got.returncode == 0, got.stderr_text
    for name in ("net_xdp", "net_tc", "net_cgroup"):
        assert f"Program {name} does not support autoattach, pinned as a program only" in got.stderr_text
        assert links_of(prog_id_of(path / name)) == []
    assert sorted(p.name for p in path.iterdir()) == ["net_cgroup", "net_tc", "net_xdp"]
    # -j: bpftool's null, and no notes
    got = bpft("-j", "prog", "loadall", str(BPF_DIR / "attach_net.o"), str(bpffs_dir / "net2"), "autoattach")
    assert (got.returncode, got.stdout_text, got.stderr_text) == (0, "null\n", "")


def _ids(kind: str) -> set[int]:
    from bpft.kernel import syscall

    walk = {"prog": syscall.prog_get_next_id, "link": syscall.link_get_next_id}[kind]
    out, cur = set(), 0
    while (cur := walk(cur)) is not None:
        out.add(cur)
    return out


def test_autoattach_of_probes_attaches_all_or_nothing(bpffs_dir):
    """attach_probes.o has two kprobes and two uprobe sections without a place: where the
    kernel attaches kprobes, both links fire (the kretprobe's too: bpftool#160); where it
    cannot, the command fails and nothing of it stays."""
    path = bpffs_dir / "probes"
    links_before = _ids("link")
    got = bpft("prog", "loadall", str(BPF_DIR / "attach_probes.o"), str(path), "autoattach")
    if got.returncode != 0:
        assert "can't autoattach program probe_kprobe" in got.stderr_text, got.stderr_text
        assert not path.exists() or list(path.iterdir()) == []
        assert _ids("link") - links_before == set()  # no link of ours stays (others' may come)
        pytest.skip(f"this kernel: {got.stderr_text.strip().splitlines()[-1]}")
    assert sorted(p.name for p in path.iterdir()) == sorted(
        ["probe_kprobe", "probe_kprobe_link", "probe_kretprobe", "probe_kretprobe_link", "probe_uprobe", "probe_uretprobe"]
    )
    for slot, name in ((0, "probe_kprobe"), (1, "probe_kretprobe")):
        before = count(path / name, slot)
        os.close(os.open("/dev/null", os.O_RDONLY))
        assert count(path / name, slot) > before, name
