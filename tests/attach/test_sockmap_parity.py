"""``prog attach`` / ``prog detach``: end to end on the kernel, errors as bpftool's.

The kernel refuses to detach a program that is not attached, so a detach by
the other tool is our proof of attachment; flow_dissector attachment shows in
``bpftool net`` of the network namespace it was made in.
"""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
from conftest import bpft_cmd, prog_id_of, run_bpft, run_bpftool

pytestmark = pytest.mark.parity


@pytest.fixture
def objs(loaded, bpffs_dir):
    pins = loaded("attach_progs.o", "pinmaps", str(bpffs_dir / "maps"))
    return pins, bpffs_dir / "maps"


def same(a, b):
    assert (b.returncode, b.stdout_text, b.stderr_text) == (a.returncode, a.stdout_text, a.stderr_text)


SOCK_CASES = [
    # (program, attach type words, libbpf/kernel attach type the map needs)
    ("att_msg", "msg_verdict"),
    ("att_msg", "sk_msg_verdict"),
    ("att_msg", "m"),
    ("att_verdict", "stream_verdict"),
    ("att_verdict", "sk_skb_stream_verdict"),
    ("att_parser", "stream_parser"),
    ("att_parser", "sk_skb_stream_parser"),
    ("att_parser", "s"),
    ("att_skb", "skb_verdict"),
    ("att_skb", "sk_skb_verdict"),
]


@pytest.mark.parametrize("map_name", ["attach_sockmap", "attach_sockhash"])
@pytest.mark.parametrize("prog, word", SOCK_CASES)
def test_attach_then_detach_on_sock_maps(objs, prog, word, map_name):
    pins, maps = objs
    p, m = str(pins / prog), str(maps / map_name)
    # attached by bpft: bpftool can detach it, once
    got = run_bpft("prog", "attach", "pinned", p, word, "pinned", m)
    assert (got.returncode, got.stdout_text, got.stderr_text) == (0, "", "")
    run_bpftool("prog", "detach", "pinned", p, word, "pinned", m, check=True)
    again = run_bpftool("prog", "detach", "pinned", p, word, "pinned", m)
    assert again.returncode != 0 and "failed prog detach from map" in again.stderr_text
    # attached by bpftool: bpft detaches it, and a second detach fails as bpftool's does
    run_bpftool("prog", "attach", "pinned", p, word, "pinned", m, check=True)
    got = run_bpft("-j", "prog", "detach", "pinned", p, word, "pinned", m)
    assert (got.returncode, got.stdout_text, got.stderr_text) == (0, "null\n", "")
    a = run_bpftool("prog", "detach", "pinned", p, word, "pinned", m)
    b = run_bpft("prog", "detach", "pinned", p, word, "pinned", m)
    same(a, b)
    assert b.returncode == 234


def test_attach_by_id_and_map_id(objs):
    pins, maps = objs
    pid = prog_id_of(pins / "att_msg")
    out = run_bpftool("map", "show", "pinned", str(maps / "attach_sockmap"), "-j", check=True)
    mid = json.loads(out.stdout_text)["id"]
    run_bpft("prog", "attach", "id", str(pid), "msg_verdict", "id", str(mid), check=True)
    run_bpftool("prog", "detach", "id", str(pid), "msg_verdict", "id", str(mid), check=True)


@pytest.mark.parametrize(
    "args",
    [
        ["attach"],
        ["attach", "pinned", "{p}"],
        ["attach", "pinned", "{p}", "msg_verdict"],
        ["attach", "pinned", "{p}", "msg_verdict", "pinned"],
        ["attach", "pinned", "{p}", "bogus", "pinned", "{sockmap}"],
        ["attach", "pinned", "{p}", "sk_msg", "pinned", "{sockmap}"],
        ["attach", "pinned", "{p}", "cgroup_inet_ingress", "pinned", "{sockmap}"],
        ["attach", "pinned", "{p}", "flow", "pinned", "{sockmap}"],
        ["attach", "pinned", "{p}", "msg_verdict", "pinned", "{hash}"],
        ["attach", "pinned", "{p}", "stream_parser", "pinned", "{sockmap}"],
        ["attach", "pinned", "{p}", "msg_verdict", "pinned", "{dir}/nonexistent"],
        ["attach", "pinned", "{p}", "msg_verdict", "id", "4294967295"],
        ["attach", "pinned", "{p}", "msg_verdict", "name", "no_such_map_zz"],
        ["attach", "pinned", "{p}", "msg_verdict", "tag", "x"],
        ["attach", "pinned", "{p}", "msg_verdict", "pinned", "{p}"],
        ["attach", "pinned", "{sockmap}", "msg_verdict", "pinned", "{sockmap}"],
        ["attach", "id", "nope", "msg_verdict", "pinned", "{sockmap}"],
        ["detach", "pinned", "{p}", "msg_verdict", "pinned", "{sockmap}"],
        ["detach", "pinned", "{p}", "skb_verdict", "pinned", "{hash}"],
        ["detach", "pinned", "{p}", "x"],
        ["-j", "attach", "pinned", "{p}", "bogus"],
        ["-j", "detach", "pinned", "{p}", "msg_verdict", "pinned", "{sockmap}"],
    ],
)
def test_errors_match_bpftool(objs, args):
    pins, maps = objs
    subst = {
        "{p}": str(pins / "att_msg"),
        "{sockmap}": str(maps / "attach_sockmap"),
        "{hash}": str(maps / "attach_hash"),
        "{dir}": str(maps),
    }
    words = []
    for a in args:
        for k, v in subst.items():
            a = a.replace(k, v)
        words.append(a)
    if words[0] == "-j":
        words = ["-j", "prog", *words[1:]]
    else:
        words = ["prog", *words]
    a, b = run_bpftool(*words), run_bpft(*words)
    same(a, b)
    assert b.returncode != 0


# --- flow dissector, in a network namespace of its own --------------------------------


@pytest.fixture
def netns():
    name = f"bpft_{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def in_ns(ns: str, *cmd: str):
    proc = subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, timeout=60)
    proc.stdout_text = proc.stdout.decode(errors="replace")
    proc.stderr_text = proc.stderr.decode(errors="replace")
    return proc


def _flow_ids(text: str) -> list[int]:
    """Program ids under ``flow_dissector:`` in ``bpftool net`` (its -j output is
    not valid JSON there in 7.1: ``["id":N]``)."""
    ids, inside = [], False
    for line in text.splitlines():
        if line.endswith(":") and not line.startswith(" "):
            inside = line == "flow_dissector:"
        elif inside and line.strip().startswith("id "):
            ids.append(int(line.split()[1]))
    return ids


def flow_dissector_ids(ns: str) -> list[int]:
    out = in_ns(ns, "bpftool", "net")
    assert out.returncode == 0, out.stderr_text
    assert "flow_dissector:" in out.stdout_text
    return _flow_ids(out.stdout_text)


def test_flow_dissector_attach_detach_in_netns(objs, netns):
    pins, _ = objs
    pid = prog_id_of(pins / "att_flow")
    assert flow_dissector_ids(netns) == []
    got = in_ns(netns, *bpft_cmd(), "prog", "attach", "id", str(pid), "flow_dissector")
    assert (got.returncode, got.stdout_text, got.stderr_text) == (0, "", "")
    assert flow_dissector_ids(netns) == [pid]
    # the root namespace is untouched
    assert pid not in _flow_ids(run_bpftool("net", check=True).stdout_text)
    # a second attach of the same program: the kernel says EEXIST, both tools the same words
    a = in_ns(netns, "bpftool", "prog", "attach", "id", str(pid), "flow_dissector")
    b = in_ns(netns, *bpft_cmd(), "prog", "attach", "id", str(pid), "flow_dissector")
    same(a, b)
    got = in_ns(netns, *bpft_cmd(), "-j", "prog", "detach", "id", str(pid), "flow_dissector")
    assert (got.returncode, got.stdout_text) == (0, "null\n"), got.stderr_text
    assert flow_dissector_ids(netns) == []
    a = in_ns(netns, "bpftool", "prog", "detach", "id", str(pid), "flow_dissector")
    b = in_ns(netns, *bpft_cmd(), "prog", "detach", "id", str(pid), "flow_dissector")
    same(a, b)
    assert b.returncode == 234


def test_flow_dissector_needs_a_flow_dissector_program(objs, netns):
    pins, _ = objs
    pid = prog_id_of(pins / "att_msg")
    a = in_ns(netns, "bpftool", "prog", "attach", "id", str(pid), "flow_dissector")
    b = in_ns(netns, *bpft_cmd(), "prog", "attach", "id", str(pid), "flow_dissector")
    same(a, b)
    assert b.returncode == 234 and flow_dissector_ids(netns) == []
