"""`bpft prog dump` against bpftool v7.1 (xlated, every form) and objdump (jited).

Every comparison is with what bpftool (or objdump / llvm-mc) prints for the
same program in the same run; no expected text is written down here.

One deliberate difference is normalised before comparing JSON: bpftool's
json_writer prints a backslash inside a string as ``\\n`` (a bug that makes
source lines like ``bpf_printk("...\\n")`` unreadable); bpft escapes it as
JSON requires (core's writer, see ``bpft.output``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import BPF_DIR, BPFFS, byname_pin_names, byname_pins_removed, prog_id_of, run_bpftool
from conftest import run_bpft as _run_bpft_shim
from dump_batch import run_both, run_bpft_many

pytestmark = pytest.mark.parity

# the console script beside the interpreter: `bpft` on PATH may be a pyenv shim that costs
# more than bpft's own start-up
_BPFT = os.path.join(os.path.dirname(sys.executable), "bpft")


def run_bpft(*args: str, check: bool = False):
    if not os.access(_BPFT, os.X_OK):
        return _run_bpft_shim(*args, check=check)
    proc = subprocess.run([_BPFT, *args], capture_output=True, timeout=120)
    proc.stdout_text = proc.stdout.decode(errors="replace")  # type: ignore[attr-defined]
    proc.stderr_text = proc.stderr.decode(errors="replace")  # type: ignore[attr-defined]
    if check and proc.returncode != 0:
        raise AssertionError(f"bpft {' '.join(args)} failed ({proc.returncode}): {proc.stderr_text}")
    return proc


@pytest.fixture(scope="module")
def shared():
    """``loaded`` for the whole module: each object is loaded once (with ``bpftool prog
    loadall``) and its pins are shared by the tests that only read them; all removed at the end."""
    path = Path(BPFFS) / f"bpft_test_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    path.mkdir()
    done: dict[str, Path] = {}
    guards = contextlib.ExitStack()

    def load(obj: str) -> Path:
        if obj not in done:
            src = Path(obj) if os.path.isabs(obj) else BPF_DIR / obj
            names = byname_pin_names(src)
            if names:
                guards.enter_context(byname_pins_removed(names))
            pin_dir = path / f"o{len(done)}"
            done[obj] = pin_dir
            run_bpftool("prog", "loadall", str(src), str(pin_dir), check=True)
        return done[obj]

    try:
        with guards:
            yield load
    finally:
        shutil.rmtree(path, ignore_errors=True)


FORMS = [
    ([], []),
    ([], ["opcodes"]),
    ([], ["linum"]),
    (["-j"], []),
    (["-j"], ["opcodes"]),
    (["-j", "-p"], ["linum"]),
    (["-p"], ["opcodes"]),
    (["-j"], ["visual"]),
]


def bpftool_escapes(text: str) -> str:
    """Our JSON text with string escapes as bpftool's json_writer prints them."""
    return re.sub(r"\\(.)", lambda m: "\\n" if m.group(1) == "\\" else m.group(0), text)


def same(flags: list[str], *words: str) -> str:
    """Run both (real processes); assert identical status, stderr and stdout. Returns bpftool's stdout."""
    return compare(flags, words, run_bpft(*flags, *words), run_bpftool(*flags, *words))


def same_many(cmds: list[tuple[list[str], list[str]]]) -> list[str]:
    """:func:`same` for many (flags, words) at once (see dump_batch). Returns bpftool's stdouts."""
    results = run_both([[*flags, *words] for flags, words in cmds])
    return [compare(flags, words, ours, theirs) for (flags, words), (ours, theirs) in zip(cmds, results, strict=True)]


def compare(flags, words, ours, theirs) -> str:
    assert "Traceback" not in ours.stderr_text, ours.stderr_text
    assert ours.returncode == theirs.returncode, (flags, words, ours.stderr_text, theirs.stderr_text)
    err = "".join(ln for ln in ours.stderr_text.splitlines(True) if not ln.startswith("Warning: no line info"))
    expected = theirs.stderr_text.replace("bpftool", "bpft")
    if "Usage: " in expected:
        # the usage lists the verbs installed; the dump lines and the frame must agree
        dump_lines = [ln for ln in expected.splitlines(True) if " dump " in ln or "Usage: " in ln]
        assert dump_lines and all(ln in err for ln in dump_lines), (flags, words, err)
    else:
        assert err == expected, (flags, words)
    out = ours.stdout_text
    if ("-j" in flags or "-p" in flags) and out.strip():
        out = bpftool_escapes(out)
        json.loads(ours.stdout_text)
    assert out == theirs.stdout_text, (flags, words)
    return theirs.stdout_text


def pins_of(pin_dir: Path) -> list[Path]:
    return sorted(p for p in pin_dir.iterdir())


def check_progs(pins: list[Path], forms=FORMS) -> None:
    """Every form of ``dump xlated`` of each program, compared with bpftool (all in one batch)."""
    cmds: list[tuple[list[str], list[str]]] = []
    for k, pin in enumerate(pins):
        prog_id = str(prog_id_of(pin))
        # `-j visual` prints null whatever the program: checked on the first one only
        cmds += [
            (flags, ["prog", "dump", "xlated", "id", prog_id, *extra])
            for flags, extra in forms
            if k == 0 or extra != ["visual"]
        ]
        if any(extra == ["visual"] for _, extra in forms):
            cmds.append(([], ["prog", "dump", "xlated", "id", prog_id, "visual"]))
    # the `pinned` handle (same code path after the fd is open): on the first program
    cmds.append(([], ["prog", "dump", "xlated", "pinned", str(pins[0])]))
    cmds.append((["-j"], ["prog", "dump", "xlated", "pinned", str(pins[0]), "linum"]))
    results = run_both([[*flags, *words] for flags, words in cmds])
    for (flags, words), (ours, theirs) in zip(cmds, results, strict=True):
        if words[-1] == "visual" and not flags:
            # visual, plain: bpftool segfaults on a CFG whose block ends in a bpf-to-bpf call
            assert ours.returncode == 0 and "Traceback" not in ours.stderr_text
            if theirs.returncode == 0:
                assert ours.stdout_text == theirs.stdout_text
                assert ours.stdout_text.startswith("digraph")
            else:
                assert theirs.returncode == -11  # SIGSEGV; we draw the graph without that edge
                assert ours.stdout_text.startswith("digraph")
            continue
        out = compare(flags, words, ours, theirs)
        if words[3] == "id" and words[-1] != "visual":
            assert out.strip() not in ("", "[]"), (flags, words)


def check_prog(pin: Path, forms=FORMS) -> None:
    check_progs([pin], forms)


# --- programs of every type, and the features of the dump -------------------------------


@pytest.mark.parametrize(
    "obj,count",
    [("show_prog_types.o", 12), ("show_meta.o", 2), ("dump_features_v3.o", 4), ("dump_nobtf.o", 1)],
)
def test_xlated_matches_bpftool(shared, obj, count):
    """xdp, tc, socket, cgroup_skb, sk_msg, sk_skb, flow_dissector, tracepoint, raw_tp,
    tp_btf, kprobe, perf_event; subprograms, bpf_loop callbacks, global data, tail calls,
    atomics, kfuncs, PROBE_MEM, LD_ABS/IND, and a program without BTF."""
    pins = pins_of(shared(obj))
    assert len(pins) == count
    check_progs(pins)


def test_features_really_exercised(shared):
    """The feature object's dumps do contain what it is there to test."""
    pin_dir = shared("dump_features_v3.o")
    results = run_bpft_many([["prog", "dump", "xlated", "pinned", str(p)] for p in pins_of(pin_dir)])
    assert all(r.returncode == 0 for r in results)
    text = "".join(r.stdout_text for r in results)
    for needle in (
        "call pc",  # bpf-to-bpf
        "subprog[",  # bpf_loop callback address
        "bpf_tail_call#12",
        "atomic64_fetch_add",
        "atomic64_cmpxchg",
        "atomic_xchg",
        "lock *(u64 *)",
        "map[id:",
        "][0]+",  # map value (global data)
        "int dump_xdp(struct xdp_md * ctx):",  # func_info header
        "; bpf_printk(",  # line info
        "bpf_rcu_read_lock#",  # kfunc by name through kallsyms
    ):
        assert needle in text, needle


@pytest.mark.parametrize("workers", ["", "3"])
def test_long_program_split_over_workers(shared, monkeypatch, workers):
    """A program long enough to be formatted by forked workers (~36,000 slots, with BTF, line
    info on most slots, helper and bpf-to-bpf calls, ld_imm64 pairs all along): the pieces join
    into exactly bpftool's output, in every form. "" lets bpft choose (two workers or more on a
    machine with several CPUs); "3" forces three uneven pieces."""
    if workers:
        monkeypatch.setenv("BPFT_WORKERS", workers)
    else:
        monkeypatch.delenv("BPFT_WORKERS", raising=False)
    pins = pins_of(shared("dump_long.o"))
    assert len(pins) == 1
    check_prog(pins[0], [form for form in FORMS if form[1] != ["visual"]])
    from bpft_dump.dump import SLOTS_PER_WORKER

    text = run_bpftool("prog", "dump", "xlated", "pinned", str(pins[0]), check=True).stdout_text
    assert len(re.findall(r"^ *\d+: ", text, re.M)) > SLOTS_PER_WORKER  # long enough to be split
    for needle in ("call pc", "(18) r", "; acc = acc * 3 + k;"):
        assert text.count(needle) >= 900, needle
    assert len(re.findall(r"call [a-z_]\w*#\d+$", text, re.M)) >= 900  # helpers, by name


def test_ranges_never_split_an_ld_imm64():
    """However many pieces, they cover the image in order and none starts on the second half
    of an ld_imm64 (placed here across every natural cut)."""
    from bpft import insn as I
    from bpft_dump.dump import _ranges, _second_halves

    n_insns = 997
    for count in range(2, 12):
        cuts = {n_insns * k // count for k in range(1, count)}
        parts, n = [], 0
        while n < n_insns:
            p = I.ld_imm64(1, n) if n + 1 in cuts or n in cuts else I.mov64_imm(1, n)
            parts.append(p)
            n += len(p)
        image = I.assemble(*parts)
        ranges = _ranges(image, count)
        assert len(ranges) >= 2
        assert ranges[0][0] == 0 and ranges[-1][1] == len(image) // 8
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
        halves = _second_halves(image)
        assert halves and not {start for start, _ in ranges} & halves


def test_handles_tag_name_and_several_programs(shared, loaded):
    """Several programs matched by a name or tag are dumped one after another."""
    first = shared("show_meta.o")
    loaded("show_meta.o")  # the same programs again: names and tags now match two each
    pin = pins_of(first)[0]
    info = json.loads(run_bpftool("-j", "prog", "show", "pinned", str(pin), check=True).stdout_text)
    cmds = []
    for handle in (["tag", info["tag"]], ["name", info["name"]]):
        for flags, extra in [([], []), (["-j"], []), (["-p"], ["opcodes"]), ([], ["linum"])]:
            cmds.append((flags, ["prog", "dump", "xlated", *handle, *extra]))
        # file and visual need a single program
        cmds.append(([], ["prog", "dump", "xlated", *handle, "visual"]))
        cmds.append((["-j"], ["prog", "dump", "xlated", *handle, "file", "/tmp/never-written"]))
    for (flags, words), out in zip(cmds, same_many(cmds), strict=True):
        if not flags and words[-1] != "visual":
            assert out.count(f": {info['type']}  name {info['name']}  tag {info['tag']}") >= 2
    assert not os.path.exists("/tmp/never-written")
    # one of them by the real executable
    same([], "prog", "dump", "xlated", "name", info["name"])


def test_file_is_the_raw_image(shared, tmp_path):
    pins = pins_of(shared("dump_features_v3.o"))
    cmds = []
    for k, pin in enumerate(pins):
        run_bpftool("prog", "dump", "xlated", "pinned", str(pin), "file", str(tmp_path / f"theirs{k}"), check=True)
        cmds.append(["prog", "dump", "xlated", "pinned", str(pin), "file", str(tmp_path / f"ours{k}")])
    # the first by the real executable, the others in a batch
    first = run_bpft(*cmds[0], check=True)
    results = [first, *run_bpft_many(cmds[1:])]
    for k, r in enumerate(results):
        ours, theirs = tmp_path / f"ours{k}", tmp_path / f"theirs{k}"
        assert r.returncode == 0 and r.stdout_text == ""
        assert ours.read_bytes() == theirs.read_bytes() and ours.stat().st_size > 0
        assert oct(ours.stat().st_mode & 0o777) == oct(0o600)
    same_many(
        [(["-j"], ["prog", "dump", "xlated", "pinned", str(pin), "file", str(tmp_path / "ours0")]) for pin in pins]
    )


# --- instructions clang 14 cannot emit, built with core's builder --------------------------


def _raw_program() -> bytes:
    from bpft import insn as I

    R0, R1, R2, R10 = 0, 1, 2, 10
    DW, W, B, H = I.BPF_DW, I.BPF_W, I.BPF_B, I.BPF_H
    Insn = I.Insn
    parts = [
        I.mov64_imm(R0, 0x1234),
        I.mov64_imm(R1, -7),
        [Insn(I.BPF_ALU64 | I.BPF_END, R0, 0, 0, 16)],  # bswap16
        [Insn(I.BPF_ALU64 | I.BPF_END, R0, 0, 0, 32)],
        [Insn(I.BPF_ALU64 | I.BPF_END, R0, 0, 0, 64)],
        [Insn(I.BPF_ALU | I.BPF_END | I.BPF_TO_BE, R0, 0, 0, 32)],  # be32
        [Insn(I.BPF_ALU | I.BPF_END | I.BPF_TO_LE, R0, 0, 0, 16)],  # le16
        [Insn(I.BPF_ALU64 | I.BPF_MOV | I.BPF_X, R2, R1, 8, 0)],  # movsx8
        [Insn(I.BPF_ALU | I.BPF_MOV | I.BPF_X, R2, R1, 16, 0)],  # movsx16 (32-bit)
        I.mov64_imm(R2, 3),
        [Insn(I.BPF_ALU64 | I.BPF_DIV | I.BPF_X, R1, R2, 1, 0)],  # sdiv
        [Insn(I.BPF_ALU64 | I.BPF_MOD | I.BPF_K, R1, 0, 1, 5)],  # smod
        [Insn(I.BPF_ALU | I.BPF_DIV | I.BPF_K, R1, 0, 1, -2)],  # sdiv32
        [Insn(I.BPF_ALU64 | I.BPF_NEG, R1, 0, 0, 0)],
        [Insn(I.BPF_ALU | I.BPF_ARSH | I.BPF_K, R1, 0, 0, 3)],
        I.st_mem(DW, R10, -8, 0),
        I.st_mem(W, R10, -16, -1),
        I.stx_mem(H, R10, R1, -18),
        [Insn(I.BPF_LDX | I.BPF_MEMSX | B, R2, R10, -8, 0)],  # ldsx8
        [Insn(I.BPF_LDX | I.BPF_MEMSX | H, R2, R10, -8, 0)],
        [Insn(I.BPF_LDX | I.BPF_MEMSX | W, R2, R10, -8, 0)],
        I.ldx_mem(DW, R2, R10, -8),
        [Insn(I.BPF_STX | DW | I.BPF_ATOMIC, R2, R10, -8, I.BPF_LOAD_ACQ)],  # load-acquire
        [Insn(I.BPF_STX | DW | I.BPF_ATOMIC, R10, R2, -8, I.BPF_STORE_REL)],  # store-release
        I.ld_imm64(R2, 0x1122334455667788),
        [Insn(I.BPF_JMP | I.BPF_JEQ | I.BPF_K, R1, 0, 1, 42)],
        [Insn(I.BPF_JMP32 | I.BPF_JA, 0, 0, 0, 1)],  # gotol +1
        I.mov64_imm(R0, 9),
        [Insn(I.BPF_JMP32 | I.BPF_JEQ | I.BPF_K, R1, 0, 1, 42)],
        I.mov64_imm(R0, 8),
        [Insn(I.BPF_JMP | I.BPF_JCOND, 0, 0, 1, 0)],  # may_goto +1
        I.mov64_imm(R0, 7),
        I.call_helper(5),  # ktime_get_ns: by name from the helper table
        I.mov64_imm(R0, 0),
        I.exit_insn(),
    ]
    return I.assemble(*parts)


@pytest.fixture
def raw_prog(bpffs_dir):
    from bpft.kernel import syscall as sc

    fd = sc.prog_load_simple(1, _raw_program(), name="dump_raw_v4", log_size=1 << 20)  # socket filter
    try:
        pin = bpffs_dir / "raw"
        sc.obj_pin(fd, str(pin))
        yield pin
    finally:
        os.close(fd)


def test_instructions_newer_than_bpftool(raw_prog):
    """bswap, movsx, sdiv/smod, sign-extending loads, load-acquire/store-release, gotol,
    may_goto (as the verifier rewrites it): printed as bpftool 7.1's disassembler does."""
    check_prog(raw_prog)
    text = run_bpft("prog", "dump", "xlated", "pinned", str(raw_prog), check=True).stdout_text
    assert "BUG_alu64_d7" in text and "BUG_ldx_" in text


# --- libxdp's objects, compiled by others --------------------------------------------------


@pytest.fixture(scope="session")
def libxdp_objects(tmp_path_factory):
    if not shutil.which("apt-get") or not shutil.which("dpkg"):
        pytest.skip("apt-get/dpkg not available")
    d = tmp_path_factory.mktemp("libxdp")
    try:
        r = subprocess.run(["apt-get", "download", "libxdp1"], cwd=d, capture_output=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.skip("apt unreachable (timeout)")
    debs = list(d.glob("libxdp1_*.deb"))
    if r.returncode or not debs:
        pytest.skip(f"apt unreachable: {r.stderr.decode(errors='replace').strip()[-200:]}")
    subprocess.run(["dpkg", "-x", str(debs[0]), str(d / "x")], check=True)
    objs = sorted((d / "x").rglob("*.o"))
    assert len(objs) >= 10
    return objs


def test_libxdp_objects(libxdp_objects, loaded):
    pins = []
    for obj in libxdp_objects:
        try:
            pin_dir = loaded(str(obj))
        except AssertionError:
            continue  # bpftool cannot load it here either (needs attach targets)
        pins += pins_of(pin_dir)
    assert len(pins) >= 12
    check_progs(pins, forms=FORMS[:6])


# --- errors ----------------------------------------------------------------------------


ERRORS = [
    ["prog", "dump"],
    ["prog", "dump", "foo", "id", "1"],
    ["prog", "dump", "xlated"],
    ["prog", "dump", "xlated", "id"],
    ["prog", "dump", "xlated", "id", "4000000000"],
    ["prog", "dump", "xlated", "id", "abc"],
    ["prog", "dump", "xlated", "idd", "1"],
    ["prog", "dump", "xlated", "tag", "0011223344556677"],
    ["prog", "dump", "xlated", "name", "no_such_prog_x"],
    ["prog", "dump", "xlated", "pinned", "/sys/fs/bpf/no/such"],
]


def test_errors_match_bpftool():
    same_many([(flags, words) for words in ERRORS for flags in ([], ["-j"])])
    # and through the real executable (exit status, usage on stderr)
    for words in (ERRORS[0], ERRORS[4]):
        for flags in ([], ["-j"]):
            same(flags, *words)


def test_bad_arguments_and_files(shared):
    pin = pins_of(shared("show_meta.o"))[0]
    same([], "prog", "dump", "xlated", "pinned", str(pin), "opcodes", "linum")
    same([], "prog", "dump", "xlated", "pinned", str(pin), "bogus")
    same([], "prog", "dump", "xlated", "pinned", str(pin), "file")
    for flags in ([], ["-j"]):
        same(flags, "prog", "dump", "xlated", "pinned", str(pin), "file", "/proc/no/such/dir/f")
        r = run_bpft(*flags, "prog", "dump", "jited", "pinned", str(pin), "file", "/proc/no/such/dir/f")
        assert r.returncode == 255 and "Traceback" not in r.stderr_text
        assert "can't open file /proc/no/such/dir/f" in (r.stdout_text + r.stderr_text)


def test_linum_without_btf_says_so(shared):
    """bpftool prints the plain listing; we print the same and a note that there is no line info."""
    pin = pins_of(shared("dump_nobtf.o"))[0]
    theirs = run_bpftool("prog", "dump", "xlated", "pinned", str(pin), "linum", check=True)
    ours = run_bpft("prog", "dump", "xlated", "pinned", str(pin), "linum", check=True)
    assert ours.stdout_text == theirs.stdout_text
    assert "no line info" in ours.stderr_text
    same(["-j"], "prog", "dump", "xlated", "pinned", str(pin), "linum")


def test_capstone_not_imported_by_xlated(shared):
    pin = pins_of(shared("show_meta.o"))[0]
    code = (
        "import sys; from bpft.cli import main; "
        f"rc = main(['prog', 'dump', 'xlated', 'pinned', {str(pin)!r}]); "
        "sys.stdout.flush(); "
        "print('CAPSTONE' if 'capstone' in sys.modules else 'NO-CAPSTONE', file=sys.stderr); sys.exit(rc)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().endswith("NO-CAPSTONE")
    code = code.replace("'xlated'", "'jited'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr.strip().endswith("CAPSTONE") and "NO-CAPSTONE" not in r.stderr


# --- jited ------------------------------------------------------------------------------


def objdump_insns(path: Path) -> list[tuple[int, bytes, str]]:
    """(offset, bytes, text) of each instruction objdump decodes in a raw x86-64 image."""
    r = subprocess.run(
        ["objdump", "-D", "-b", "binary", "-mi386:x86-64", "-w", str(path)], capture_output=True, text=True, check=True
    )
    out = []
    for line in r.stdout.splitlines():
        m = re.match(r"^\s*([0-9a-f]+):\t((?:[0-9a-f]{2} )+)\s*\t?(.*)$", line)
        if m:
            out.append((int(m.group(1), 16), bytes.fromhex(m.group(2)), m.group(3).strip()))
    return out


_MEM = re.compile(r"^(\*?)([-\w]*)\(([^)]*)\)$")


def _num(tok: str) -> int:
    return int(tok, 0) & 0xFFFFFFFFFFFFFFFF


def _split_operands(text: str) -> list[str]:
    ops, depth, cur = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            ops.append(cur.strip())
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    if cur.strip():
        ops.append(cur.strip())
    return ops


def canonical(text: str, branch_base: int = 0) -> list[tuple]:
    """AT&T operands as comparable tuples (objdump's and LLVM's spellings alike)."""
    out = []
    for op in _split_operands(text.split("#")[0].strip()):
        m = _MEM.match(op)
        if m:
            parts = [p.strip() for p in m.group(3).split(",")] + ["", "", ""]
            disp = _num(m.group(2)) if m.group(2) else 0
            out.append(("mem", m.group(1), disp, parts[0], parts[1], int(parts[2] or "1", 0)))
        elif op.startswith("$"):
            out.append(("imm", _num(op[1:])))
        elif op.lstrip("*").startswith("%"):
            out.append(("reg", op))
        else:
            star = op.startswith("*")
            out.append(("addr", star, (_num(op.lstrip("*")) + (0 if star else branch_base)) & 0xFFFFFFFFFFFFFFFF))
    return out


def _same_imm(a: int, b: int) -> bool:
    if a == b:
        return True
    for bits in (8, 16, 32):  # objdump prints an immediate at its encoded width
        m = (1 << bits) - 1
        if b <= m and (a & m) == b:
            return True
    return False


def same_insn(ours: str, base: int, theirs: str) -> bool:
    """Our LLVM-style line (mnemonic, tab, operands) and objdump's agree."""
    o_op, _, o_args = ours.strip("\t").partition("\t")
    parts = theirs.split(None, 1)
    t_op, t_args = (parts + [""])[:2]
    if t_op in ("lock", "rep", "repz", "repnz", "notrack", "bnd") and t_args:
        p2 = t_args.split(None, 1)
        t_op, t_args = t_op + " " + p2[0], (p2 + [""])[1]
    ow, tw = o_op.split(), t_op.split()
    if len(ow) != len(tw) or not all(a == b or (a[-1] in "bwlq" and a[:-1] == b) for a, b in zip(ow, tw, strict=True)):
        return False
    a, b = canonical(o_args, base), canonical(t_args)
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x[0] != y[0]:
            return False
        if x[0] == "imm":
            if not _same_imm(x[1], y[1]):
                return False
        elif x != y:
            return False
    return True


@pytest.mark.skipif(not shutil.which("objdump"), reason="objdump (binutils) not installed")
@pytest.mark.parametrize("obj", ["dump_features_v3.o", "show_prog_types.o", "dump_nobtf.o"])
def test_jited_agrees_with_objdump(shared, tmp_path, obj):
    import platform

    if platform.machine() != "x86_64":
        pytest.skip("objdump comparison is for x86-64 images")
    checked = 0
    pins = pins_of(shared(obj))
    cmds = []
    for pin in pins:
        cmds.append(["prog", "dump", "jited", "pinned", str(pin), "file", str(tmp_path / f"{pin.name}.bin")])
        cmds.append(["-j", "prog", "dump", "jited", "pinned", str(pin), "opcodes"])
        cmds.append(["prog", "dump", "jited", "pinned", str(pin)])
    results = run_bpft_many(cmds)
    assert all(r.returncode == 0 and "Traceback" not in r.stderr_text for r in results), results
    for k, pin in enumerate(pins):
        image = tmp_path / f"{pin.name}.bin"
        r, js, pl = results[3 * k : 3 * k + 3]
        assert r.stdout_text == ""
        reference = objdump_insns(image)
        data = image.read_bytes()
        funcs = json.loads(js.stdout_text)
        plain = pl.stdout_text
        texts = [m.group(1) for m in re.finditer(r"^\s*[0-9a-f]+:(\t.*)$", plain, re.M)]
        ours = []
        base = 0
        for func in funcs:
            assert func["name"].startswith("bpf_prog_")
            for ins in func["insns"]:
                raw = bytes(int(b, 16) for b in ins["opcodes"])
                ours.append((base + int(ins["pc"], 16), raw, base))
            base += sum(len(i["opcodes"]) for i in func["insns"])
        assert base == len(data)
        assert len(ours) == len(reference) == len(texts), pin
        for (off, raw, fbase), text, (t_off, t_raw, t_text) in zip(ours, texts, reference, strict=True):
            assert off == t_off and raw == t_raw, (pin, off, text, t_text)
            assert raw == data[off : off + len(raw)]
            assert same_insn(text, fbase, t_text), (pin, hex(off), text, t_text)
            checked += 1
    assert checked > 0


def llvm_mc_lines(data: bytes, triple: str) -> list[str]:
    hexes = " ".join(f"0x{b:02x}" for b in data)
    r = subprocess.run(["llvm-mc", "--disassemble", f"-triple={triple}"], input=hexes, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return [ln for ln in r.stdout.splitlines() if ln.startswith("\t") and not ln.startswith("\t.")]


@pytest.mark.skipif(not shutil.which("llvm-mc"), reason="llvm-mc not installed")
def test_jited_text_is_llvms(shared, tmp_path):
    """Instruction text as LLVM's disassembler prints it (what upstream bpftool shows),
    branch targets aside (LLVM prints them relative when not symbolizing)."""
    from bpft_dump.jited import X86Formatter, _capstone, disasm_lines

    fmt = X86Formatter(_capstone())
    for pin in pins_of(shared("dump_features_v3.o")):
        image = tmp_path / "img"
        run_bpft("prog", "dump", "jited", "pinned", str(pin), "file", str(image), check=True)
        data = image.read_bytes()
        ours = [t for _pc, n, t in disasm_lines(fmt, data) if n]
        ref = llvm_mc_lines(data, "x86_64")
        merged = []
        for ln in ref:  # llvm-mc lists a lock prefix as a line of its own
            if merged and merged[-1] == "\tlock":
                merged[-1] = "\tlock " + ln[1:]
            else:
                merged.append(ln)
        assert len(ours) == len(merged)
        for a, b in zip(ours, merged, strict=True):
            if re.match(r"\t(j\w+|callq|call)\t[-\d]", b):
                assert a.split("\t")[1] == b.split("\t")[1]
                continue
            assert a == b.rstrip(), (a, b)


def test_jited_arm64_known_bytes():
    """arm64 is chosen from the machine; check the formatter on a known byte string."""
    from bpft_dump.jited import disasm_lines, formatter_for

    code = bytes.fromhex(
        "1f2003d5"  # nop
        "fd7bbfa9"  # stp x29, x30, [sp, #-16]!
        "fd030091"  # mov x29, sp
        "e00300aa"  # mov x0, x0
        "00008052"  # mov w0, #0
        "02000014"  # b +8
        "fd7bc1a8"  # ldp x29, x30, [sp], #16
        "c0035fd6"  # ret
    )
    fmt = formatter_for("aarch64")
    lines = disasm_lines(fmt, code)
    assert [pc for pc, _n, _t in lines] == list(range(0, len(code), 4))
    texts = [t for _pc, _n, t in lines]
    if shutil.which("llvm-mc"):
        ref = llvm_mc_lines(code, "aarch64")
        assert len(ref) == len(texts)
        for a, b in zip(texts, ref, strict=True):
            if b.startswith("\tb\t"):
                assert a == "\tb\t0x1c"  # bpftool's LLVM prints the target address
                continue
            assert a == b.rstrip(), (a, b)
    else:
        assert texts[1] == "\tstp\tx29, x30, [sp, #-16]!"


def test_jited_json_and_linum(shared):
    pin = pins_of(shared("dump_features_v3.o"))[-1]
    d = json.loads(run_bpft("-j", "prog", "dump", "jited", "pinned", str(pin), "linum", check=True).stdout_text)
    assert d and all("name" in f and f["insns"] for f in d)
    assert any("src" in i and "line_num" in i and "file" in i for f in d for i in f["insns"])
    assert all(set(i) >= {"pc", "operation", "operands"} for f in d for i in f["insns"])
    pretty = run_bpft("-p", "prog", "dump", "jited", "pinned", str(pin), check=True).stdout_text
    assert json.loads(pretty) == json.loads(run_bpft("-j", "prog", "dump", "jited", "pinned", str(pin)).stdout_text)
    plain = run_bpft("prog", "dump", "jited", "pinned", str(pin), "linum", check=True).stdout_text
    assert "[file:" in plain and "line_num:" in plain
