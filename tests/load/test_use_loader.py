"""``bpft -L prog load``: the generated loader program against bpftool's.

* The program and its data blob are bpftool's, byte for byte: bpftool runs under an
  LD_PRELOAD shim (``bpfcapture.c``) that records what libbpf hands the kernel.
* The command prints what bpftool prints (``gen:`` lines, with ``-d`` the loader's
  instructions and the verifier's log), exits as bpftool does, and leaves nothing
  loaded or pinned (``tests/matrix/guest.py``'s ``loader_like_bpftool``, which the
  kernel-matrix guests run too).
* Errors: bad command lines, an object bpftool 7.1 crashes on, failed runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "matrix"))
from bpft_load.elfopen import open_object
from bpft_load.errors import LoadError
from bpft_load.genloader import generate_loader, load_and_run
from bpft_load.log import Log
from guest import _loaded_prog_names, bpft, bpftool, loader_like_bpftool  # noqa: E402
from libxdp import libxdp_dir, libxdp_objects  # noqa: E402,F401

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BPF_DIR = ROOT / "tests" / "bpf"
STRUCT_OPS = {"load_struct_ops.o", "load_struct_ops2.o"}  # bpftool 7.1 -L crashes on them
OBJECTS = sorted(p.name for p in BPF_DIR.glob("*.o") if p.name not in STRUCT_OPS) + ["../../examples/hello.bpf.o"]

pytestmark = pytest.mark.parity


@pytest.fixture(scope="session")
def capture_lib(tmp_path_factory) -> Path:
    """bpfcapture.c built as a shared library with the host's C compiler."""
    cc = next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
    if cc is None:
        pytest.skip("no C compiler to build the capture shim")
    lib = tmp_path_factory.mktemp("capture") / "bpfcapture.so"
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(lib), str(HERE / "bpfcapture.c"), "-ldl"], check=True)
    return lib


def bpftool_loader(obj: Path, lib: Path, out: Path) -> tuple[int, bytes | None, bytes | None]:
    """bpftool -L prog load OBJ: its status, and the loader's instructions and data it
    handed the kernel (None if it did not get that far)."""
    out.mkdir(exist_ok=True)
    for f in out.iterdir():
        f.unlink()
    env = dict(os.environ, LD_PRELOAD=str(lib), BPFCAPTURE_DIR=str(out))
    pin = f"/sys/fs/bpf/bpft_capture_{os.getpid()}"
    r = subprocess.run(["bpftool", "-L", "prog", "load", str(obj), pin], env=env, capture_output=True, timeout=120)
    assert not os.path.exists(pin)
    insns, data = out / "insns", out / "data"
    return (
        r.returncode,
        insns.read_bytes() if insns.exists() else None,
        data.read_bytes() if data.exists() else None,
    )


def assert_same_loader(obj: Path, lib: Path, out: Path) -> None:
    status, insns, data = bpftool_loader(obj, lib, out)
    try:
        loader = generate_loader(open_object(str(obj), log=Log()), Log())
    except LoadError as e:
        assert insns is None, f"{obj.name}: bpftool generated a loader, bpft refused: {e}"
        assert status == -(e.errno or 0) & 0xFF, (obj.name, status, e)
        return
    assert insns is not None and data is not None, f"{obj.name}: bpft generated a loader, bpftool exited {status}"
    assert loader.insns == insns, f"{obj.name}: the loader's instructions differ"
    assert loader.data == data, f"{obj.name}: the loader's data blob differs"


@pytest.mark.parametrize("obj", OBJECTS)
def test_generated_loader_is_bpftools(obj, capture_lib, tmp_path):
    assert_same_loader(BPF_DIR / obj, capture_lib, tmp_path / "cap")


def test_libxdp_loaders_are_bpftools(libxdp_objects, capture_lib, tmp_path):  # noqa: F811
    for obj in libxdp_objects:
        assert_same_loader(obj, capture_lib, tmp_path / "cap")


@pytest.mark.parametrize("flags", [(), ("-d",), ("-j",)], ids=["plain", "debug", "json"])
@pytest.mark.parametrize("obj", OBJECTS)
def test_cli_like_bpftool(obj, flags):
    assert not loader_like_bpftool(str(BPF_DIR / obj), *flags)


def test_libxdp_cli_like_bpftool(libxdp_objects):  # noqa: F811
    for obj in libxdp_objects:
        for flags in ((), ("-d",)):
            assert not loader_like_bpftool(str(obj), *flags), (obj.name, flags)


@pytest.mark.parametrize("obj", sorted(STRUCT_OPS))
def test_struct_ops_refused_cleanly(obj):
    """bpftool 7.1 crashes here (libbpf reads no kernel BTF when it generates); bpft
    refuses with libbpf-style lines and leaves nothing behind."""
    before = _loaded_prog_names()
    r = bpft("-L", "prog", "load", str(BPF_DIR / obj), "/sys/fs/bpf/bpft_never")
    assert r.status == 161  # -EOPNOTSUPP
    assert "struct_ops maps need the kernel's BTF" in r.stderr
    assert r.stderr.endswith("Error: failed to load object file\n")
    assert not os.path.exists("/sys/fs/bpf/bpft_never")
    assert _loaded_prog_names() - before == set()


@pytest.mark.parametrize(
    "words",
    [
        ("-L", "prog", "load"),
        ("-L", "prog", "load", "/nonexistent.o"),
        ("-j", "-L", "prog", "load", "/nonexistent.o"),
        ("-L", "prog", "load", str(BPF_DIR / "load_bad_verifier.c")),
    ],
    ids=["no-file", "missing", "missing-json", "not-elf"],
)
def test_bad_input_like_bpftool(words):
    theirs, ours = bpftool(*words), bpft(*words)
    assert (ours.status, ours.stdout, ours.stderr) == (theirs.status, theirs.stdout, theirs.stderr)


def test_loadall_ignores_use_loader(tmp_path):
    """bpftool 7.1 takes -L for ``load`` only: ``loadall`` loads and pins as without it."""
    base = Path("/sys/fs/bpf") / f"bpft_loadall_L_{os.getpid()}"
    base.mkdir()
    try:
        for tool in (bpftool, bpft):
            r = tool("-L", "prog", "loadall", str(BPF_DIR / "attach_trace.o"), str(base / tool.__name__))
            assert r.status == 0, r
        assert sorted(os.listdir(base / "bpft")) == sorted(os.listdir(base / "bpftool")) != []
    finally:
        subprocess.run(["rm", "-rf", str(base)])


def test_library_run_hands_back_the_fds():
    """generate_loader + load_and_run: the loader's maps and programs come back as fds
    (the programs' names as the object's), and close() releases them."""
    from bpft.kernel import info

    spec = open_object(str(BPF_DIR / "attach_trace.o"), log=Log())
    loader = generate_loader(spec, Log())
    before = _loaded_prog_names()
    with load_and_run(loader) as run:
        assert (run.err, run.errstr, run.log) == (0, None, None)
        assert len(run.map_fds) == 1 and len(run.prog_fds) == 3
        names = [info.prog_info(fd).name.decode() for fd in run.prog_fds]
        assert names == [p.name[:15] for p in spec.main_programs()]
        assert {name for _, name in _loaded_prog_names() - before} == set(names)
    assert _loaded_prog_names() - before == set()


def test_library_failed_run_leaves_nothing():
    """A program the verifier refuses: the loader's cleanup closes what it made."""
    loader = generate_loader(open_object(str(BPF_DIR / "load_bad_verifier.o"), log=Log()), Log())
    before = _loaded_prog_names()
    with load_and_run(loader, log_level=1) as run:
        assert run.err < 0 and run.errstr == "failed to execute loader prog"
        assert run.map_fds == run.prog_fds == []
        assert run.log  # the refused program's verifier log
    assert _loaded_prog_names() - before == set()


@pytest.mark.parametrize("definition", ["same", "other"])
def test_map_already_pinned_by_name(definition, libxdp_dir):  # noqa: F811
    """libbpf looks for a map pinned by name for real while it generates: one with the
    object's definition is taken, and missing from the loader (-EFAULT); one with another
    definition is refused (-EINVAL). bpft does as bpftool, line for line."""
    from conftest import byname_pins_removed

    obj = next(libxdp_dir.rglob("xdpfilt_alw_tcp.o"))  # pins xdp_stats_map by name
    with byname_pins_removed(None):
        if definition == "same":
            prog_pin = f"/sys/fs/bpf/bpft_pinned_by_name_{os.getpid()}"
            assert bpftool("prog", "load", str(obj), prog_pin).status == 0
            os.unlink(prog_pin)
        else:
            r = bpftool("map", "create", "/sys/fs/bpf/xdp_stats_map", "type", "percpu_array", "key", "4",
                        "value", "16", "entries", "9", "name", "xdp_stats_map")  # fmt: skip
            assert r.status == 0, r
        assert not loader_like_bpftool(str(obj), "-d")
        assert bpft("-L", "prog", "load", str(obj), "/sys/fs/bpf/x").status == (242 if definition == "same" else 234)
