"""bpft prog load / loadall against bpftool 7.1 on the same objects."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import (  # noqa: E402
    BPF_DIR,
    ROOT,
    bpft_cmd,
    byname_pin_names,
    byname_pins_removed,
    prog_id_of,
    run_bpft,
    run_bpftool,
)
from libxdp import libxdp_dir, libxdp_objects  # noqa: E402, F401 - fixtures (libxdp_objects uses libxdp_dir)
from parity import compare, show, xlated  # noqa: E402

OBJECTS = sorted(p.name for p in BPF_DIR.glob("*.o")) + ["../../examples/hello.bpf.o"]


@pytest.mark.parity
@pytest.mark.parametrize("obj", OBJECTS)
def test_loadall_parity(obj, bpffs_dir):
    ra, rb, diffs = compare(str(BPF_DIR / obj), str(bpffs_dir))
    assert not diffs
    assert (ra == 0) == (rb == 0)


@pytest.mark.parity
def test_libxdp_parity(libxdp_objects, bpffs_dir):  # noqa: F811 - the fixture
    assert len(libxdp_objects) >= 15
    loaded = 0
    for i, obj in enumerate(libxdp_objects):
        base = bpffs_dir / f"x{i}"
        base.mkdir()
        with byname_pins_removed(byname_pin_names(obj)):  # libxdp's filters pin by name
            ra, rb, diffs = compare(str(obj), str(base))
        assert not diffs, (obj, diffs)
        loaded += ra == 0
    assert loaded >= 14  # xdpdump_bpf.o needs fentry targets; bpftool refuses it too


@pytest.mark.parity
def test_load_first_program(bpffs_dir):
    obj = str(BPF_DIR / "load_subprogs.o")
    run_bpftool("prog", "load", obj, str(bpffs_dir / "a"), check=True)
    r = run_bpft("prog", "load", obj, str(bpffs_dir / "b"), check=True)
    assert r.stdout_text == "" and r.stderr_text == ""
    assert show(str(bpffs_dir / "a")) == show(str(bpffs_dir / "b"))
    xa = xlated(str(bpffs_dir / "a"))
    assert xa.strip() and xa == xlated(str(bpffs_dir / "b"))


@pytest.mark.kernel
def test_load_json_prints_null(bpffs_dir):
    r = run_bpft("-j", "prog", "load", str(ROOT / "examples/hello.bpf.o"), str(bpffs_dir / "h"), check=True)
    assert r.stdout_text.strip() == "null"
    assert prog_id_of(bpffs_dir / "h") > 0


@pytest.mark.parity
def test_failed_loadall_leaves_nothing(bpffs_dir):
    obj = str(BPF_DIR / "load_bad_verifier.o")
    r = run_bpft("prog", "loadall", obj, str(bpffs_dir / "p"))
    t = run_bpftool("prog", "loadall", obj, str(bpffs_dir / "q"))
    assert r.returncode == t.returncode == 255
    assert not (bpffs_dir / "p").exists() and not (bpffs_dir / "q").exists()
    assert "Error: failed to load object file" in r.stderr_text
    assert "prog 'bad_one': BPF program load failed: Invalid argument" in r.stderr_text
    # the verifier's own words, as bpftool shows them
    assert "-- BEGIN PROG LOAD LOG --" in r.stderr_text
    for line in ("R5 !read_ok", "-- END PROG LOAD LOG --"):
        assert (line in r.stderr_text) == (line in t.stderr_text)
    assert "Traceback" not in r.stderr_text


@pytest.mark.parity
def test_map_reuse_by_name_and_idx(bpffs_dir):
    obj = str(ROOT / "examples/hello.bpf.o")
    run_bpftool("prog", "loadall", obj, str(bpffs_dir / "first"), "pinmaps", str(bpffs_dir / "maps"), check=True)
    mp = str(bpffs_dir / "maps" / "hello_packets")
    mid = int(run_bpftool("-j", "map", "show", "pinned", mp, check=True).stdout_text.split('"id":')[1].split(",")[0])
    for how in (("name", "hello_packets"), ("idx", "0")):
        pin = bpffs_dir / f"re_{how[0]}"
        run_bpft("prog", "load", obj, str(pin), "map", *how, "pinned", mp, check=True)
        ids = run_bpftool("-j", "prog", "show", "pinned", str(pin), check=True).stdout_text
        assert f"{mid}" in ids.split('"map_ids":[')[1].split("]")[0].split(",")


@pytest.mark.parity
def test_pinmaps_names_as_bpftool(bpffs_dir):
    obj = str(BPF_DIR / "load_maps.o")
    run_bpftool("prog", "loadall", obj, str(bpffs_dir / "a"), "pinmaps", str(bpffs_dir / "ma"), check=True)
    run_bpft("prog", "loadall", obj, str(bpffs_dir / "b"), "pinmaps", str(bpffs_dir / "mb"), check=True)
    names = sorted(os.listdir(bpffs_dir / "ma"))
    assert names and names == sorted(os.listdir(bpffs_dir / "mb"))


def _kernel_fields(pin: Path, *fields: str, is_map: bool = False) -> dict:
    from bpft.kernel import info as kinfo
    from bpft.kernel import syscall as sc

    fd = sc.obj_get(str(pin))
    try:
        i = kinfo.map_info(fd) if is_map else kinfo.prog_info(fd)
    finally:
        os.close(fd)
    return {f: getattr(i, f) for f in fields}


@pytest.mark.parity
@pytest.mark.parametrize("obj_name", ["load_struct_ops.o", "load_struct_ops2.o"])
def test_struct_ops_as_bpftool(bpffs_dir, obj_name):
    """.struct_ops maps: created (not registered), their programs loaded once each as struct_ops
    with the kernel struct's BTF id and the member's index, as bpftool 7.1 (libbpf 1.1) does;
    load_struct_ops2.o has two maps sharing two of their programs."""
    obj = str(BPF_DIR / obj_name)
    (bpffs_dir / "c").mkdir()
    ra, rb, diffs = compare(obj, str(bpffs_dir / "c"))
    assert not diffs and ra == rb == 0
    run_bpftool("prog", "loadall", obj, str(bpffs_dir / "a"), "pinmaps", str(bpffs_dir / "ma"), check=True)
    run_bpft("prog", "loadall", obj, str(bpffs_dir / "b"), "pinmaps", str(bpffs_dir / "mb"), check=True)
    progs = sorted(os.listdir(bpffs_dir / "a"))
    assert len(progs) >= 3 and progs == sorted(os.listdir(bpffs_dir / "b"))
    for p in progs:
        fa = _kernel_fields(bpffs_dir / "a" / p, "type", "attach_btf_id", "attach_btf_obj_id")
        assert fa["type"] == 27 and fa["attach_btf_id"]
        assert fa == _kernel_fields(bpffs_dir / "b" / p, "type", "attach_btf_id", "attach_btf_obj_id")
    maps = sorted(os.listdir(bpffs_dir / "ma"))
    assert maps and maps == sorted(os.listdir(bpffs_dir / "mb"))
    fields = ("type", "key_size", "value_size", "btf_key_type_id", "btf_value_type_id", "btf_vmlinux_value_type_id")
    for m in maps:
        ma = show_map(str(bpffs_dir / "ma" / m))
        assert ma["type"] == "struct_ops" and ma == show_map(str(bpffs_dir / "mb" / m))
        ka = _kernel_fields(bpffs_dir / "ma" / m, *fields, is_map=True)
        assert ka["btf_vmlinux_value_type_id"]
        assert ka == _kernel_fields(bpffs_dir / "mb" / m, *fields, is_map=True)


def show_map(pin: str) -> dict:
    d = json.loads(run_bpftool("-j", "map", "show", "pinned", pin, check=True).stdout_text)
    for k in ("id", "btf_id", "pids"):
        d.pop(k, None)
    return d


ARG_CASES = [
    ("prog", "load", "only_one"),
    ("prog", "load", "{obj}", "{pin}", "type", "nosuchtype"),
    ("prog", "load", "{obj}", "{pin}", "type", "xdp", "type", "xdp"),
    ("prog", "load", "{obj}", "{pin}", "map", "idx", "x1", "id", "1"),
    ("prog", "load", "{obj}", "{pin}", "map", "foo", "0", "id", "1"),
    ("prog", "load", "{obj}", "{pin}", "map", "name", "nosuch", "id", "{mapid}"),
    ("prog", "load", "{obj}", "{pin}", "map", "idx", "7", "id", "{mapid}"),
    ("prog", "load", "{obj}", "{pin}", "dev", "nosuchdev0"),
    ("prog", "load", "{obj}", "{pin}", "bogus"),
    ("prog", "load", "/nonexistent.o", "{pin}"),
    ("prog", "load", "{notelf}", "{pin}"),
    ("prog", "loadall", "{obj}", "{pin}", "pinmaps"),
    ("-n", "prog", "load", "{obj}", "/tmp/bpft_not_bpffs/x"),
    ("prog", "load", "{obj}", "{pin}", "type", "socket"),
]


@pytest.mark.parity
@pytest.mark.parametrize("case", ARG_CASES, ids=lambda c: " ".join(c))
def test_errors_as_bpftool(case, bpffs_dir, tmp_path):
    notelf = tmp_path / "notelf.o"
    notelf.write_text("not an ELF file\n")
    os.makedirs("/tmp/bpft_not_bpffs", exist_ok=True)
    obj = str(ROOT / "examples/hello.bpf.o")
    run_bpftool("prog", "loadall", obj, str(bpffs_dir / "m"), "pinmaps", str(bpffs_dir / "maps"), check=True)
    mapid = run_bpftool("-j", "map", "show", "pinned", str(bpffs_dir / "maps/hello_packets")).stdout_text
    mapid = mapid.split('"id":')[1].split(",")[0]
    res = []
    for tool, pin in ((run_bpftool, "t"), (run_bpft, "f")):
        words = [w.format(obj=obj, pin=str(bpffs_dir / pin), notelf=notelf, mapid=mapid) for w in case]
        r = tool(*words)
        lines = [
            ln
            for ln in r.stderr_text.splitlines()
            if not ln.startswith(("Warning: bpftool is now", "If it used to work", "libbpf: prog 'hello': -- BEGIN"))
            and ln
        ]
        res.append((r.returncode, [ln for ln in lines if ln.startswith(("Error", "libbpf"))]))
        assert "Traceback" not in r.stderr_text
    assert res[0][0] == res[1][0]
    # bpftool's Error line, exactly
    assert [ln for ln in res[0][1] if ln.startswith("Error")] == [ln for ln in res[1][1] if ln.startswith("Error")]
    assert not (bpffs_dir / "f").exists() or res[1][0] == 0


# --- -d: libbpf's debug lines and the verifier log, on success too -------------------------

_BPFTOOL_REMINDER = ("Warning: bpftool is now running", "If it used to work")
_MASKS = [
    (re.compile(r"0x[0-9a-f]{8,16}\b"), "0xADDR"),  # kernel addresses in the verifier log
    (re.compile(r"\bfd=\d+"), "fd=N"),
    (re.compile(r"\b\d+ usec\b"), "N usec"),
]


def _debug_lines(text: str, pin_dir: Path) -> list[str]:
    out = []
    for ln in text.splitlines():
        if ln.startswith(_BPFTOOL_REMINDER):
            continue
        ln = ln.replace(str(pin_dir), "PIN")
        for rx, sub in _MASKS:
            ln = rx.sub(sub, ln)
        out.append(ln)
    return out


@pytest.mark.parity
@pytest.mark.parametrize(
    "obj", ["examples/hello.bpf.o", "tests/bpf/load_subprogs.o", "tests/bpf/core_fields.o", "tests/bpf/load_kernel.o"]
)
def test_debug_output_as_bpftool(obj, bpffs_dir):
    t = run_bpftool("-d", "prog", "loadall", str(ROOT / obj), str(bpffs_dir / "t"))
    f = run_bpft("-d", "prog", "loadall", str(ROOT / obj), str(bpffs_dir / "f"))
    assert t.returncode == f.returncode == 0, f.stderr_text[-2000:]
    lt, lf = _debug_lines(t.stderr_text, bpffs_dir / "t"), _debug_lines(f.stderr_text, bpffs_dir / "f")
    # the verifier's log of each successful load is there, as bpftool prints it
    logs = [ln for ln in lt if ln.endswith("-- BEGIN PROG LOAD LOG --")]
    assert logs and len(logs) == len(os.listdir(bpffs_dir / "t"))
    assert any(ln.startswith("processed ") for ln in lf)
    assert lt == lf


# --- dev NAME on a device that cannot offload ---------------------------------------------


@pytest.fixture
def veth_netns():
    """A veth pair in a fresh network namespace; yields (netns name, device)."""
    if not shutil.which("ip"):
        pytest.skip("no ip(8)")
    ns = f"bpft_dev_{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", ns], capture_output=True)
    if r.returncode:
        pytest.skip(f"cannot make a netns: {r.stderr.decode(errors='replace').strip()}")
    try:
        subprocess.run(["ip", "-n", ns, "link", "add", "bpftva", "type", "veth", "peer", "name", "bpftvb"], check=True)
        yield ns, "bpftva"
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.mark.parity
@pytest.mark.parametrize("where", ["lo", "veth"])
@pytest.mark.parametrize("obj", ["examples/hello.bpf.o", "tests/bpf/run_nobtf.o"])  # a map first; no map
@pytest.mark.parametrize("json_out", [False, True])
def test_dev_without_offload_as_bpftool(where, obj, json_out, bpffs_dir, request):
    prefix: list[str] = []
    dev = "lo"
    if where == "veth":
        ns, dev = request.getfixturevalue("veth_netns")
        prefix = ["ip", "netns", "exec", ns]
    words = (["-j"] if json_out else []) + ["prog", "load", str(ROOT / obj)]
    res = []
    for tool, pin in ((["bpftool"], "t"), (bpft_cmd(), "f")):
        r = subprocess.run([*prefix, *tool, *words, str(bpffs_dir / pin), "dev", dev], capture_output=True, text=True)
        assert "Traceback" not in r.stderr
        said = [ln for ln in r.stderr.splitlines() if ln and not ln.startswith(_BPFTOOL_REMINDER)]
        res.append((r.returncode, r.stdout, said))
        assert not (bpffs_dir / pin).exists()
    assert res[0][0] == 255  # the kernel refuses: this device cannot offload
    assert res[0][2] or res[0][1]  # and bpftool says why
    assert res[0] == res[1]
