"""The kernel-matrix parity suite: bpft against bpftool in the same kernel, every verb.

Runs inside each guest of ``scripts/kernel.sh`` (see docs/kernel-matrix.md) and on
the host with the rest of the tests. One Python process: bpft in-process, bpftool
as a subprocess. Chosen to take a few minutes under TCG emulation: every verb and
every form once, not every combination.
"""

from __future__ import annotations

import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "dump"))
from conftest import byname_pin_names, byname_pins_removed, prog_id_of  # noqa: E402
from guest import (  # noqa: E402
    BPF_DIR,
    ROOT,
    bpft,
    bpftool,
    have,
    libxdp_dir,
    loader_like_bpftool,
    loads_like_bpftool,
    requires,
    same,
    tracing_allowed,
)

pytestmark = pytest.mark.parity

OBJECTS = sorted(p.name for p in BPF_DIR.glob("*.o")) + ["../../examples/hello.bpf.o"]
PKT = bytes(range(64)) + b"bpft matrix pkt!"


@pytest.fixture(scope="module")
def progs():
    """matrix_progs.o loaded once by bpftool: {short name: pin path}."""
    base = Path("/sys/fs/bpf") / f"bpft_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    base.mkdir()
    r = bpftool("prog", "loadall", str(BPF_DIR / "matrix_progs.o"), str(base / "p"), "pinmaps", str(base / "m"))
    try:
        assert r.status == 0, r
        yield {p.name.removeprefix("mx_"): str(p) for p in (base / "p").iterdir()} | {"_maps": str(base / "m")}
    finally:
        subprocess.run(["rm", "-rf", str(base)])


# --- load / loadall ----------------------------------------------------------------------


@pytest.mark.parametrize("obj", OBJECTS)
def test_loadall_like_bpftool(obj, bpffs_dir):
    """Every test object loads exactly when bpftool loads it, with the same xlated code."""
    path = BPF_DIR / obj
    with byname_pins_removed(byname_pin_names(path)):
        _status, diffs = loads_like_bpftool(str(path), bpffs_dir)
    assert not diffs


def test_libxdp_like_bpftool(bpffs_dir):
    """Objects compiled by others (Debian's libxdp1) load exactly when bpftool loads them."""
    d = libxdp_dir()
    if d is None:
        pytest.skip("libxdp1's objects not fetched (BPFT_LIBXDP_DIR; scripts/kernel.sh fetch)")
    objs = sorted(d.rglob("*.o"))
    assert objs
    loaded = 0
    for i, obj in enumerate(objs):
        base = bpffs_dir / f"x{i}"
        base.mkdir()
        with byname_pins_removed(byname_pin_names(obj)):
            status, diffs = loads_like_bpftool(str(obj), base)
        assert not diffs, (obj.name, diffs)
        loaded += status == 0
    assert loaded > 0


def test_load_first_program_and_pin(progs, bpffs_dir):
    obj = str(BPF_DIR / "matrix_progs.o")
    for tool in (bpftool, bpft):
        r = tool("prog", "load", obj, str(bpffs_dir / tool.__name__))
        assert r.status == 0 and r.stdout == "", r
    assert show_of(bpffs_dir / "bpftool") == show_of(bpffs_dir / "bpft")
    # pin: a second pin of a loaded program, by id; then onto a pin that exists
    prog_id = str(prog_id_of(progs["xdp"]))
    for flags in ([], ["-j"]):
        a, b = bpffs_dir / f"a{len(flags)}", bpffs_dir / f"b{len(flags)}"
        theirs = bpftool(*flags, "prog", "pin", "id", prog_id, str(a))
        ours = bpft(*flags, "prog", "pin", "id", prog_id, str(b))
        assert (ours.status, ours.stdout, ours.stderr) == (theirs.status, theirs.stdout, theirs.stderr) == (0, ours.stdout, "")
        assert prog_id_of(a) == prog_id_of(b) == int(prog_id)
        theirs = bpftool(*flags, "prog", "pin", "id", prog_id, str(a))
        ours = bpft(*flags, "prog", "pin", "id", prog_id, str(a))
        assert ours.status == theirs.status != 0
        assert ours.stderr == theirs.stderr.replace("bpftool", "bpft")


def show_of(pin: Path) -> dict:
    d = json.loads(bpftool("-j", "prog", "show", "pinned", str(pin)).stdout)
    return {k: v for k, v in d.items() if k not in ("id", "loaded_at", "btf_id", "map_ids")}


def test_tracing_programs_load_like_bpftool(bpffs_dir):
    """fentry/fexit/kprobe: loaded with their BTF ids where the kernel allows them."""
    tracing_allowed()
    status, diffs = loads_like_bpftool(str(BPF_DIR / "matrix_trace.o"), bpffs_dir)
    assert not diffs
    if status:
        pytest.skip("this kernel refuses fentry/fexit here (bpftool too)")
    assert sorted(os.listdir(bpffs_dir / "bpft")) == ["mx_fentry", "mx_fexit", "mx_kprobe"]


def test_btf_kinds_newer_than_the_kernel(bpffs_dir):
    """An object with FLOAT, DECL_TAG and TYPE_TAG: libbpf sanitizes them away on older
    kernels and keeps the object's BTF; so must we (the program shows a btf_id)."""
    _status, diffs = loads_like_bpftool(str(BPF_DIR / "btf_new_kinds.o"), bpffs_dir)
    assert not diffs
    info = json.loads(bpftool("-j", "prog", "show", "pinned", str(bpffs_dir / "bpft" / "new_kinds")).stdout)
    assert info.get("btf_id")


def test_failed_load_leaves_nothing(bpffs_dir):
    """A verifier refusal (and, on older kernels, a program type they lack): the same
    status as bpftool, libbpf's lines, nothing pinned."""
    for obj in ("load_bad_verifier.o", "run_progs.o"):
        for tool in (bpftool, bpft):
            r = tool("prog", "loadall", str(BPF_DIR / obj), str(bpffs_dir / tool.__name__))
            if obj == "run_progs.o" and r.status == 0:
                break  # the kernel has BPF_PROG_TYPE_SYSCALL (5.14+)
            assert r.status != 0 and "libbpf: " in r.stderr and "Error: " in r.stderr, r
            assert not (bpffs_dir / tool.__name__).exists() or not os.listdir(bpffs_dir / tool.__name__)
            if obj == "run_progs.o" and tool is bpft:  # ours names what the kernel lacks
                assert "Warning: program type syscall needs Linux 5.14; this kernel is " in r.stderr, r
    ours = bpft("prog", "loadall", str(BPF_DIR / "load_bad_verifier.o"), str(bpffs_dir / "x"))
    theirs = bpftool("prog", "loadall", str(BPF_DIR / "load_bad_verifier.o"), str(bpffs_dir / "y"))
    assert [x for x in ours.stderr.splitlines() if x.startswith("Error: ")] == [
        x for x in theirs.stderr.splitlines() if x.startswith("Error: ")
    ]


# --- show --------------------------------------------------------------------------------


def test_show_every_form(progs):
    """By id, tag, name and pin; plain, -j, -p, -f; and the whole listing (the guest's
    kernel holds only this suite's programs)."""
    for name in ("xdp", "printk"):
        pin = progs[name]
        prog_id = str(prog_id_of(pin))
        info = json.loads(bpftool("-j", "prog", "show", "id", prog_id).stdout)
        for flags in ([], ["-j"], ["-p"], ["-f"]):
            same(*flags, "prog", "show", "id", prog_id)
        for handle in (["tag", info["tag"]], ["name", info["name"]], ["pinned", pin]):
            same("prog", "show", *handle)
            same("-j", "prog", "show", *handle)
    same("p", "l", "i", str(prog_id_of(progs["socket"])))


def test_show_whole_listing(progs):
    if not os.environ.get("KMATRIX_GUEST"):
        pytest.skip("the host's kernel holds other sessions' programs, coming and going")
    same("prog", "show")
    same("-j", "prog", "show")


@pytest.mark.parametrize(
    "words",
    [
        ["prog", "show", "id"],
        ["prog", "show", "id", "x"],
        ["prog", "show", "id", "4294967295"],
        ["prog", "show", "tag", "zz"],
        ["prog", "show", "name", "no_such_program"],
        ["prog", "show", "pinned", "/nonexistent/pin"],
        ["prog", "dump", "xlated", "id", "4294967295"],
        ["prog", "load", "/nonexistent.o", "/sys/fs/bpf/bpft_nothing"],
        ["prog", "run", "id", "4294967295"],
    ],
    ids=lambda w: " ".join(w[1:])[:40],
)
def test_errors_like_bpftool(words):
    for flags in ([], ["-j"]):
        r = same(*flags, *words)
        assert r.status != 0


# --- dump --------------------------------------------------------------------------------


def test_dump_xlated_every_form(progs, tmp_path):
    for name in ("target",):  # a subprogram, a map, BTF: every form has something to show
        prog_id = str(prog_id_of(progs[name]))
        for flags, extra in (
            ([], []),
            ([], ["opcodes"]),
            ([], ["linum"]),
            ([], ["visual"]),
            (["-j"], []),
            (["-j"], ["opcodes", "linum"]),
        ):
            same(*flags, "prog", "dump", "xlated", "id", prog_id, *extra)
        theirs, ours = tmp_path / "theirs", tmp_path / "ours"
        assert bpftool("prog", "dump", "xlated", "id", prog_id, "file", str(theirs)).status == 0
        assert bpft("prog", "dump", "xlated", "id", prog_id, "file", str(ours)).status == 0
        assert ours.read_bytes() == theirs.read_bytes()


@pytest.mark.skipif(not have("objdump"), reason="objdump (binutils) not installed")
def test_dump_jited_agrees_with_objdump(progs, tmp_path):
    """The JIT image (file) has the kernel's size, and each instruction we print is the
    one objdump decodes at that offset."""
    import platform

    if platform.machine() != "x86_64":
        pytest.skip("objdump comparison is for x86-64 images")
    from test_dump import objdump_insns, same_insn

    for name in ("xdp", "target"):
        prog_id = str(prog_id_of(progs[name]))
        image = tmp_path / f"{name}.bin"
        assert bpft("prog", "dump", "jited", "id", prog_id, "file", str(image)).status == 0
        # Debian's bpftool has no disassembler (nor jited dumps): its -j show gives the size
        assert image.stat().st_size == json.loads(bpftool("-j", "prog", "show", "id", prog_id).stdout)["bytes_jited"]
        funcs = json.loads(bpft("-j", "prog", "dump", "jited", "id", prog_id, "opcodes").stdout)
        plain = bpft("prog", "dump", "jited", "id", prog_id).stdout
        texts = [m.group(1) for m in re.finditer(r"^\s*[0-9a-f]+:(\t.*)$", plain, re.M)]
        reference = objdump_insns(image)
        ours, base = [], 0
        for func in funcs:
            for ins in func["insns"]:
                ours.append((base + int(ins["pc"], 16), bytes(int(b, 16) for b in ins["opcodes"]), base))
            base += sum(len(i["opcodes"]) for i in func["insns"])
        assert base == image.stat().st_size
        assert len(ours) == len(reference) == len(texts)
        for (off, raw, fbase), text, (t_off, t_raw, t_text) in zip(ours, texts, reference, strict=True):
            assert (off, raw) == (t_off, t_raw)
            # a shift or rotate by one (opcode D1): objdump leaves the count out, LLVM prints $1
            t_text = re.sub(r"^((?:sh|sa|ro|rc)[lr][bwlq]?)\s+(%\w+)$", r"\1 $0x1,\2", t_text)
            # a multi-byte nop (5.10's JIT pads with 66 66 66 66 90): objdump spells the prefixes
            t_text = re.sub(r"^(?:data16 )*xchg\s+%ax,%ax$", "nop", t_text)
            assert same_insn(text, fbase, t_text), (name, hex(off), text, t_text)


# --- attach / detach ---------------------------------------------------------------------


def test_attach_detach_like_bpftool(bpffs_dir):
    """sk_skb/sk_msg programs on a sockmap: attach with one tool, detach with the other
    (the kernel refuses to detach what is not attached), and the errors of both."""
    pins = bpffs_dir / "p"
    r = bpftool("prog", "loadall", str(BPF_DIR / "attach_progs.o"), str(pins), "pinmaps", str(bpffs_dir / "m"))
    assert r.status == 0, r
    sockmap = str(bpffs_dir / "m" / "attach_sockmap")
    for prog, word in (("att_msg", "msg_verdict"), ("att_parser", "stream_parser"), ("att_verdict", "stream_verdict")):
        words = ["pinned", str(pins / prog), word, "pinned", sockmap]
        assert bpft("prog", "attach", *words).status == 0
        assert bpftool("prog", "detach", *words).status == 0
        assert bpftool("prog", "attach", *words).status == 0
        assert bpft("prog", "detach", *words).status == 0
        same("prog", "detach", *words)  # no longer attached: the kernel's error, both ways
    same("prog", "attach", "pinned", str(pins / "att_msg"), "nosuchtype", "pinned", sockmap)
    same("-j", "prog", "attach", "pinned", str(pins / "att_msg"), "msg_verdict")


# --- run, tracelog -----------------------------------------------------------------------


def test_run_like_bpftool(progs, tmp_path):
    pkt = tmp_path / "pkt"
    pkt.write_bytes(PKT)
    for name in ("xdp", "tc", "socket"):
        for flags in ([], ["-j"]):
            out_a, out_b = tmp_path / f"{name}.a", tmp_path / f"{name}.b"
            words = ["prog", "run", "pinned", progs[name], "data_in", str(pkt), "repeat", "3"]
            theirs = bpftool(*flags, *words, "data_out", str(out_a))
            ours = bpft(*flags, *words, "data_out", str(out_b))
            assert ours.status == theirs.status == 0, (ours, theirs)
            norm = re.compile(r"(duration(?: \(average\))?: |\"duration\": ?)\d+")
            assert norm.sub("N", ours.stdout) == norm.sub("N", theirs.stdout)
            assert out_a.read_bytes() == out_b.read_bytes()
    same("prog", "run", "pinned", progs["xdp"])  # no data_in: the kernel's refusal


def test_tracelog_shows_a_printk(progs, tmp_path):
    """The printk of a program we ran comes back through ``bpft prog tracelog``, in the
    shape bpftool prints it (one subprocess of bpft: tracelog runs until interrupted)."""
    requires("5.10", "BPF_PROG_TEST_RUN for raw_tp programs")
    ctx = tmp_path / "ctx"
    value = int.from_bytes(uuid.uuid4().bytes[:6], "little")
    ctx.write_bytes(struct.pack("<QQ", value, 0))
    exe = os.path.join(os.path.dirname(sys.executable), "bpft")
    proc = subprocess.Popen([exe, "prog", "tracelog"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen = b""
        deadline = time.monotonic() + 120
        os.set_blocking(proc.stdout.fileno(), False)
        marker = f"bpft-matrix-printk {value:x}".encode()
        while marker not in seen and time.monotonic() < deadline:
            assert bpft("prog", "run", "pinned", progs["printk"], "ctx_in", str(ctx)).status == 0
            time.sleep(1)
            try:
                seen += os.read(proc.stdout.fileno(), 65536) or b""
            except BlockingIOError:
                pass
        assert marker in seen, seen[-500:]
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and b"Traceback" not in err
    line = next(x for x in seen.decode().splitlines() if f"{value:x}" in x)
    assert re.match(r"^\s*\S.*\[\d{3}\] .{4,5} +\d+\.\d{6}: bpf_trace_printk: bpft-matrix-printk [0-9a-f]+$", line), line


# --- -L: load through a generated loader program -------------------------------------

# what each guest runs: a tracing program with its BTF attach target, global data
# (update, freeze), CO-RE relocated by the kernel, a load that libbpf refuses to
# generate (prog-array slots), a verifier refusal, ksyms and kfuncs looked up by the
# loader, with -d one whose log is short; plus libxdp's dispatcher
LOADER_CASES = [
    ("attach_trace.o", ()),
    ("attach_trace.o", ("-d",)),
    ("matrix_progs.o", ()),
    ("core_fields.o", ()),
    ("load_maps.o", ()),
    ("load_bad_verifier.o", ()),
    ("load_genloader.o", ()),
    ("../../examples/hello.bpf.o", ("-j",)),
]


@pytest.mark.parametrize(("obj", "flags"), LOADER_CASES)
def test_use_loader_like_bpftool(obj, flags):
    """``-L prog load``: the same status, output and ``gen:`` lines as bpftool, with
    ``-d`` the same loader instructions and verifier log; nothing left loaded or pinned."""
    assert not loader_like_bpftool(str(BPF_DIR / obj), *flags)


def test_use_loader_libxdp_like_bpftool():
    d = libxdp_dir()
    if d is None:
        pytest.skip("libxdp1's objects not fetched (BPFT_LIBXDP_DIR; scripts/kernel.sh fetch)")
    obj = next(d.rglob("xdp-dispatcher.o"))
    assert not loader_like_bpftool(str(obj))
