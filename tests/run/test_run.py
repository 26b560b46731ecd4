"""`bpft prog run` against bpftool v7.1 on programs of every test-runnable type here."""

from __future__ import annotations

import json
import os
import re
import struct

import pytest
from conftest import run_bpft, run_bpftool

PKT = bytes(range(64)) + b"bpft test packet"  # 80 bytes: an Ethernet header and then some

_DURATION = re.compile(rb"(duration(?: \(average\))?: )\d+ns|(\"duration\": ?)\d+")


def norm(out: bytes) -> bytes:
    """The duration is a measurement: the one field two runs never share."""
    return _DURATION.sub(lambda m: (m.group(1) or m.group(2)) + b"N", out)


@pytest.fixture
def progs(loaded):
    pin_dir = loaded("run_progs.o")
    pins = {p.name.removeprefix("run_"): str(p) for p in pin_dir.iterdir()}
    assert set(pins) >= {"xdp", "tc", "socket", "cgroup_skb", "flow_dissector", "raw_tp", "syscall", "printk"}
    return pins


def same(*words: str, input: bytes | None = None, files: tuple[str, ...] = ()) -> bytes:
    """Run bpftool and bpft with the same words; the same status, stdout, stderr and output files."""
    theirs = run_bpftool(*words, input=input)
    got = {f: open(f, "rb").read() for f in files if os.path.exists(f)}
    for f in files:
        if os.path.exists(f):
            os.unlink(f)
    ours = run_bpft(*words, input=input)
    assert b"Traceback" not in ours.stderr
    assert ours.returncode == theirs.returncode, (words, ours.stderr_text, theirs.stderr_text)
    assert ours.stderr_text == re.sub(r"\bbpftool\b(?![\w/])", "bpft", theirs.stderr_text), words
    assert norm(ours.stdout) == norm(theirs.stdout), words
    for f in files:
        assert open(f, "rb").read() == got[f], (words, f)
    return ours.stdout


SKB_TYPES = ["xdp", "tc", "socket", "cgroup_skb", "flow_dissector"]


@pytest.mark.parity
@pytest.mark.parametrize("ptype", SKB_TYPES)
def test_run_matches_bpftool(progs, tmp_path, ptype):
    data = tmp_path / "pkt"
    data.write_bytes(PKT)
    pin = progs[ptype]
    for flags in ([], ["-j"], ["-j", "-p"]):
        out = same(*flags, "prog", "run", "pinned", pin, "data_in", str(data), "data_out", "-")
        assert out  # a dump and a return value: never an empty comparison
        same(*flags, "prog", "run", "pinned", pin, "data_in", str(data), "data_out", "-", "repeat", "7")
        same(*flags, "prog", "run", "pinned", pin, "data_in", str(data))
        same(*flags, "p", "r", "pinned", pin, "data_i", str(data), "data_o", "-", "data_s", "4096", "r", "0x3")
    out_file = str(tmp_path / "out")
    same("prog", "run", "pinned", pin, "data_in", str(data), "data_out", out_file, files=(out_file,))
    same("prog", "run", "pinned", pin, "data_in", "-", "data_out", "-", input=PKT)
    if ptype == "flow_dissector":
        return
    # a 1-byte packet and an empty one: what the kernel says of them
    data.write_bytes(b"\x01")
    same("prog", "run", "pinned", pin, "data_in", str(data), "data_out", "-")
    data.write_bytes(b"")
    same("prog", "run", "pinned", pin, "data_in", str(data), "data_out", "-")


@pytest.mark.parity
def test_run_tc_with_context(progs, tmp_path):
    """tc takes a struct __sk_buff as ctx_in and gives it back (mark, priority set by the program)."""
    data, ctx = tmp_path / "pkt", tmp_path / "ctx"
    data.write_bytes(PKT)
    ctx.write_bytes(bytes(8) + struct.pack("<I", 3))  # mark 0, ..., priority 3: the first fields
    for flags in ([], ["-j"]):
        out = same(
            *flags,
            "prog",
            "run",
            "pinned",
            progs["tc"],
            "data_in",
            str(data),
            "ctx_in",
            str(ctx),
            "ctx_out",
            "-",
            "ctx_size_out",
            "256",
        )
        assert out
    ours = json.loads(
        run_bpft(
            "-j", "prog", "run", "pinned", progs["tc"], "data_in", str(data), "ctx_in", str(ctx), "ctx_out", "-"
        ).stdout
    )
    ctx_out = bytes(ours["ctx_out"])
    assert struct.unpack_from("<I", ctx_out, 8)[0] == 0x42  # skb->mark as the program set it
    assert ours["retval"] == len(PKT)


@pytest.mark.parity
def test_run_too_small_output(progs, tmp_path):
    """ENOSPC: bpftool's message, and how big the output is (bpft says more than bpftool)."""
    data = tmp_path / "pkt"
    data.write_bytes(PKT)
    words = ("prog", "run", "pinned", progs["xdp"], "data_in", str(data), "data_out", "-", "data_size_out", "10")
    theirs, ours = run_bpftool(*words), run_bpft(*words)
    assert ours.returncode == theirs.returncode != 0
    assert theirs.stderr_text.startswith("Error: failed to run program: No space left on device")
    assert (
        ours.stderr_text
        == f"Error: failed to run program: No space left on device (output data is {len(PKT) + 4} bytes, data_size_out is 10)\n"
    )
    assert ours.stdout == theirs.stdout == b""


@pytest.mark.parity
def test_raw_tp_and_syscall(progs, tmp_path):
    """bpftool 7.1 always passes repeat and ctx_out, which the kernel refuses for these types.

    bpft runs them as the kernel allows: check the results against the inputs.
    """
    ctx = tmp_path / "ctx"
    ctx.write_bytes(struct.pack("<QQ", 40, 2))
    theirs = run_bpftool("prog", "run", "pinned", progs["raw_tp"], "ctx_in", str(ctx))
    assert theirs.returncode != 0 and "Invalid argument" in theirs.stderr_text
    ours = run_bpft("prog", "run", "pinned", progs["raw_tp"], "ctx_in", str(ctx), check=True)
    assert ours.stdout_text == "Return value: 42, duration: 0ns\n"
    ours = run_bpft("-j", "prog", "run", "pinned", progs["raw_tp"], "ctx_in", str(ctx), "ctx_out", "-", check=True)
    assert json.loads(ours.stdout) == {"retval": 42, "duration": 0}

    ctx.write_bytes(struct.pack("<IIII", 5, 9, 0, 41))
    theirs = run_bpftool("prog", "run", "pinned", progs["syscall"], "ctx_in", str(ctx), "ctx_out", "-")
    assert theirs.returncode != 0 and "Invalid argument" in theirs.stderr_text
    ours = run_bpft("-j", "prog", "run", "pinned", progs["syscall"], "ctx_in", str(ctx), "ctx_out", "-", check=True)
    res = json.loads(ours.stdout)
    assert res["retval"] == 14
    assert struct.unpack("<IIII", bytes(res["ctx_out"])) == (5, 9, 14, 42)
    out = tmp_path / "ctx_out"
    run_bpft(
        "prog",
        "run",
        "pinned",
        progs["syscall"],
        "ctx_in",
        "-",
        "ctx_out",
        str(out),
        input=ctx.read_bytes(),
        check=True,
    )
    assert struct.unpack("<IIII", out.read_bytes()) == (5, 9, 14, 42)

    # what these types cannot take: said plainly
    data = tmp_path / "pkt"
    data.write_bytes(PKT)
    bad = run_bpft("prog", "run", "pinned", progs["raw_tp"], "data_in", str(data))
    assert bad.returncode == 234 and "take no data_in" in bad.stderr_text
    bad = run_bpft("prog", "run", "pinned", progs["syscall"], "ctx_in", str(ctx), "repeat", "5")
    assert bad.returncode == 234 and "repeat must be 0 or 1" in bad.stderr_text


@pytest.mark.parity
def test_run_errors_match_bpftool(progs, tmp_path):
    data = tmp_path / "pkt"
    data.write_bytes(PKT)
    xdp, d = progs["xdp"], str(data)
    cases = [
        (),
        ("pinned", xdp),
        ("pinned", xdp, "data_in"),
        ("pinned", xdp, "data_in", d, "data"),
        ("pinned", xdp, "data_in", d, "ctx_"),
        ("pinned", xdp, "data_in", d, "foo", "bar"),
        ("pinned", xdp, "data_in", d, "repeat"),
        ("pinned", xdp, "data_in", d, "repeat", "1x"),
        ("pinned", xdp, "data_in", d, "data_size_out", "-"),
        ("pinned", xdp, "data_in", d, "ctx_size_out", "zz"),
        ("pinned", xdp, "data_in", "-", "ctx_in", "-"),
        ("pinned", xdp, "ctx_in", "-", "data_in", "-"),
        ("pinned", xdp, "data_in", str(tmp_path / "missing")),
        ("pinned", xdp, "ctx_in", d, "data_in", str(tmp_path / "missing")),
        ("pinned", str(tmp_path / "nopin"), "data_in", d),
        ("id", "0x", "data_in", d),
        ("id", "999999999", "data_in", d),
        ("pinned", progs["tracepoint"], "data_in", d),  # a type test_run does not support
        ("pinned", xdp, "data_in", d, "data_out", str(tmp_path / "no" / "dir")),
    ]
    for case in cases:
        for flags in ([], ["-j"]):
            if flags and case[-1:] == (str(tmp_path / "no" / "dir"),):
                continue  # bpftool's JSON here is not JSON (see the next test)
            same(*flags, "prog", "run", *case)


def test_run_json_stays_json_on_output_errors(progs, tmp_path):
    """bpftool nests an error object inside the result object; bpft gives a member "error"."""
    data = tmp_path / "pkt"
    data.write_bytes(PKT)
    ours = run_bpft(
        "-j", "prog", "run", "pinned", progs["xdp"], "data_in", str(data), "data_out", str(tmp_path / "no" / "dir")
    )
    assert ours.returncode == 255
    res = json.loads(ours.stdout)
    assert res["error"].startswith("failed to open ") and res["retval"] == 2


def test_run_without_data_in(progs, tmp_path):
    """Enough words but no data_in: bpftool passes no data and relays EINVAL; bpft says what is missing."""
    words = ("prog", "run", "pinned", progs["xdp"], "repeat", "2")
    theirs, ours = run_bpftool(*words), run_bpft(*words)
    assert ours.returncode == theirs.returncode == 234
    assert theirs.stderr_text == "Error: failed to run program: Invalid argument\n"
    assert (
        ours.stderr_text
        == "Error: failed to run program: Invalid argument (no data_in: xdp programs need input data)\n"
    )


def test_run_unreadable_input(progs, tmp_path):
    """A directory as data_in: bpftool reads nothing and the kernel says EINVAL; bpft names the cause."""
    ours = run_bpft("prog", "run", "pinned", progs["xdp"], "data_in", str(tmp_path))
    assert ours.returncode == 255
    assert ours.stderr_text == f"Error: failed to read data_in/ctx_in from {tmp_path}: Is a directory\n"
    ours = run_bpft("-j", "prog", "run", "pinned", progs["xdp"], "data_in", str(tmp_path))
    assert json.loads(ours.stdout)["error"].endswith("Is a directory")
