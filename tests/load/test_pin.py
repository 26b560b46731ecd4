"""``prog pin``: bpft against bpftool 7.1 on the same programs and paths."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from conftest import prog_id_of, run_bpft, run_bpftool

pytestmark = pytest.mark.parity


@pytest.fixture
def prog(loaded):
    """A pinned sk_msg program (loaded by bpftool)."""
    return loaded("attach_progs.o") / "att_msg"


def both(*args: str, tool_dir: Path | None = None):
    """Run bpftool then bpft with ``args``; ``{tool}`` in an arg becomes the tool's name."""
    out = []
    for tool, run in (("bpftool", run_bpftool), ("bpft", run_bpft)):
        out.append(run(*(a.replace("{tool}", tool) for a in args)))
    return out


def same(a, b):
    assert (b.returncode, b.stdout_text, b.stderr_text) == (a.returncode, a.stdout_text, a.stderr_text)


def test_pin_makes_a_second_pin_of_the_same_program(prog, bpffs_dir):
    target = bpffs_dir / "again"
    proc = run_bpft("prog", "pin", "pinned", str(prog), str(target))
    assert proc.returncode == 0, proc.stderr_text
    assert proc.stdout_text == proc.stderr_text == ""
    assert prog_id_of(target) == prog_id_of(prog)
    shown = run_bpftool("prog", "show", "pinned", str(target), "-j", check=True)
    assert f'"id":{prog_id_of(prog)},' in shown.stdout_text


def test_pin_by_id_and_json(prog, bpffs_dir):
    pid = prog_id_of(prog)
    a, b = both("-j", "prog", "pin", "id", str(pid), str(bpffs_dir / "j_{tool}"))
    same(a, b)
    assert b.stdout_text == "null\n"
    assert prog_id_of(bpffs_dir / "j_bpft") == pid


@pytest.mark.parametrize(
    "args",
    [
        ["prog", "pin", "pinned", "{prog}"],
        ["prog", "pin", "pinned", "{prog}", "{dir}/exists"],
        ["prog", "pin", "pinned", "{prog}", "{dir}/no/such/dir"],
        ["prog", "pin", "pinned", "{dir}/missing", "{dir}/x_{tool}"],
        ["prog", "pin", "pinned", "{map}", "{dir}/x_{tool}"],
        ["prog", "pin", "id", "4294967295", "{dir}/x_{tool}"],
        ["prog", "pin", "id", "abc", "{dir}/x_{tool}"],
        ["prog", "pin", "bogus", "1", "{dir}/x_{tool}"],
        ["-n", "prog", "pin", "pinned", "{prog}", "/nonexistent_dir_zz/x"],
        ["prog", "pin", "pinned", "{prog}", "/nonexistent_dir_zz/x"],
        ["-j", "prog", "pin", "pinned", "{prog}", "{dir}/exists"],
        ["prog", "pin", "pinned", "{prog}", "{dir}/extra_{tool}", "more", "words"],
    ],
)
def test_pin_errors_match_bpftool(args, loaded, bpffs_dir):
    pins = loaded("attach_progs.o", "pinmaps", str(bpffs_dir / "maps"))
    (bpffs_dir / "exists").mkdir()
    subst = {"{prog}": str(pins / "att_msg"), "{dir}": str(bpffs_dir), "{map}": str(bpffs_dir / "maps" / "attach_hash")}

    def fill(a):
        for k, v in subst.items():
            a = a.replace(k, v)
        return a

    a, b = both(*map(fill, args))
    same(a, b)


def _tmp_dir() -> Path:
    path = Path("/tmp") / f"bpft_pin_{uuid.uuid4().hex[:10]}"
    path.mkdir()
    return path


def _umount(path: Path) -> None:
    """Undo bpftool's mount: the bpffs and the bind mount of the directory onto itself."""
    for _ in range(4):
        if subprocess.run(["mountpoint", "-q", str(path)]).returncode != 0:
            break
        subprocess.run(["umount", str(path)], capture_output=True)
    subprocess.run(["rm", "-rf", str(path)])


@pytest.mark.kernel
def test_pin_mounts_bpffs_like_bpftool(prog):
    """Outside bpffs, both tools mount one on FILE's directory and pin there."""
    dirs = {}
    try:
        for tool, run in (("bpftool", run_bpftool), ("bpft", run_bpft)):
            d = dirs[tool] = _tmp_dir()
            proc = run("prog", "pin", "pinned", str(prog), str(d / "p"))
            assert proc.returncode == 0, proc.stderr_text
            from bpft.kernel import fs

            assert fs.is_bpffs(str(d)), tool
            assert prog_id_of(d / "p") == prog_id_of(prog)
            assert oct(os.stat(d).st_mode & 0o777) == "0o700"
        # and -n refuses where bpftool refuses
        a, b = both("-n", "prog", "pin", "pinned", str(prog), str(dirs["bpft"] / "sub" / "p"))
        same(a, b)
    finally:
        for d in dirs.values():
            _umount(d)


@pytest.mark.kernel
def test_nomount_outside_bpffs(prog):
    d = _tmp_dir()
    try:
        a = run_bpftool("-n", "prog", "pin", "pinned", str(prog), str(d / "p"))
        b = run_bpft("-n", "prog", "pin", "pinned", str(prog), str(d / "p"))
        same(a, b)
        assert b.returncode != 0 and "--nomount" in b.stderr_text
        assert not os.path.ismount(d)
    finally:
        _umount(d)
