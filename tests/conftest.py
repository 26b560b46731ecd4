"""Shared fixtures: kernel access, bpffs scratch dirs, running bpft and bpftool.

Conventions (see DESIGN.md, "Tests"):
* ``@pytest.mark.kernel`` tests load real programs; they skip when bpf() is
  not permitted. Every program, map and pin they create is removed by the
  fixtures that created it, pass or fail.
* ``@pytest.mark.parity`` tests compare with the ``bpftool`` binary and skip
  when it is absent.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BPF_DIR = ROOT / "tests" / "bpf"
BPFFS = "/sys/fs/bpf"


def _bpf_usable() -> str | None:
    """None if bpf() works here, else the reason it doesn't."""
    if os.geteuid() != 0:
        return "needs root"
    try:
        from bpft.kernel import syscall as sc

        sc.prog_get_next_id(0)
    except OSError as e:
        return f"bpf() not permitted: {e.strerror}"
    if not os.path.ismount(BPFFS):
        try:
            from bpft.kernel import fs

            os.makedirs(BPFFS, exist_ok=True)
            fs.mount_fs(BPFFS, "bpf")
        except OSError as e:
            return f"no bpffs at {BPFFS}: {e}"
    return None


_KERNEL_SKIP = None


def pytest_collection_modifyitems(config, items):
    global _KERNEL_SKIP
    need_kernel = [i for i in items if "kernel" in i.keywords or "parity" in i.keywords]
    if need_kernel:
        _KERNEL_SKIP = _bpf_usable()
    for item in items:
        if "kernel" in item.keywords or "parity" in item.keywords:
            if _KERNEL_SKIP:
                item.add_marker(pytest.mark.skip(reason=_KERNEL_SKIP))
        if "parity" in item.keywords and not shutil.which("bpftool"):
            item.add_marker(pytest.mark.skip(reason="bpftool not installed"))


@pytest.fixture
def bpffs_dir():
    """A fresh directory under /sys/fs/bpf, removed (with all pins in it) afterwards."""
    path = Path(BPFFS) / f"bpft_test_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def reaped(proc: subprocess.Popen):
    """Around the part of a test that talks to a process it started: when the block
    ends, pass or fail, the process is killed if it still runs, and waited for."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def bpft_cmd() -> list[str]:
    # the bpft beside this interpreter (a venv's), else the one on PATH
    beside = os.path.join(os.path.dirname(sys.executable), "bpft")
    exe = beside if os.access(beside, os.X_OK) else shutil.which("bpft")
    return [exe] if exe else [sys.executable, "-m", "bpft"]


def run_bpft(*args: str, input: bytes | None = None, env: dict | None = None, check: bool = False):
    """Run the installed ``bpft`` with ``args``; returns CompletedProcess with text output."""
    proc = subprocess.run(
        [*bpft_cmd(), *args],
        input=input,
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    proc.stdout_text = proc.stdout.decode(errors="replace")  # type: ignore[attr-defined]
    proc.stderr_text = proc.stderr.decode(errors="replace")  # type: ignore[attr-defined]
    if check and proc.returncode != 0:
        raise AssertionError(f"bpft {' '.join(args)} failed ({proc.returncode}): {proc.stderr_text}")
    return proc


def run_bpftool(*args: str, input: bytes | None = None, check: bool = False):
    proc = subprocess.run(["bpftool", *args], input=input, capture_output=True, timeout=120)
    proc.stdout_text = proc.stdout.decode(errors="replace")  # type: ignore[attr-defined]
    proc.stderr_text = proc.stderr.decode(errors="replace")  # type: ignore[attr-defined]
    if check and proc.returncode != 0:
        raise AssertionError(f"bpftool {' '.join(args)} failed ({proc.returncode}): {proc.stderr_text}")
    return proc


@pytest.fixture
def loaded(bpffs_dir):
    """Load an object from tests/bpf with ``bpftool prog loadall``; returns its pin dir.

    ``loaded("xdp_basic.o")`` -> Path of a bpffs dir holding one pin per
    program; removed with everything in it at teardown.
    """
    counter = iter(range(1000))
    guards = contextlib.ExitStack()

    def load(obj: str, *extra: str) -> Path:
        path = Path(obj) if os.path.isabs(obj) else BPF_DIR / obj
        pin_dir = bpffs_dir / f"o{next(counter)}"
        # maps with pinning = LIBBPF_PIN_BY_NAME go to /sys/fs/bpf/<name>, outside pin_dir
        names = byname_pin_names(path)
        if names:
            guards.enter_context(byname_pins_removed(names))
        run_bpftool("prog", "loadall", str(path), str(pin_dir), *extra, check=True)
        return pin_dir

    with guards:
        yield load


def prog_id_of(pin: Path | str) -> int:
    """The id of a pinned program."""
    from bpft.kernel import info, syscall

    fd = syscall.obj_get(str(pin))
    try:
        return info.prog_info(fd).id
    finally:
        os.close(fd)


# --- pins outside the test's own directory ------------------------------------------------

_BYNAME_LOCK = "/run/lock/bpft-tests-bpffs.lock"


def byname_pin_names(obj: Path | str) -> list[str]:
    """Names of the maps that ``obj`` declares with ``pinning = LIBBPF_PIN_BY_NAME``.

    libbpf (and our loader) pins such a map at ``/sys/fs/bpf/<name>``, whatever
    pin directory the command was given. Read from the object's BTF: the
    ``.maps`` DATASEC's variables whose struct has ``int (*pinning)[1]``. An
    object that is not a little-endian ELF64 with such BTF has none.
    """
    from bpft import btf as B

    try:
        data = Path(obj).read_bytes()
        if data[:6] != b"\x7fELF\x02\x01":
            return []
        (shoff,) = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        shdrs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
        shstr = data[shdrs[shstrndx][4] : shdrs[shstrndx][4] + shdrs[shstrndx][5]]
        secs = {shstr[h[0] : shstr.index(b"\0", h[0])]: h for h in shdrs}
        h = secs.get(b".BTF")
        if h is None or b".maps" not in secs:
            return []
        btf = B.Btf(data[h[4] : h[4] + h[5]])

        def skip(tid: int):
            t = btf.type(tid)
            while t.kind in (B.TYPEDEF, B.VOLATILE, B.CONST, B.RESTRICT, B.TYPE_TAG):
                t = btf.type(t.size_or_type)
            return t

        out = []
        for i, t in enumerate(btf.types):
            if t.kind != B.DATASEC or btf.name(t.name_off) != ".maps":
                continue
            for name, type_id, _off in B.datasec_vars(btf, btf.first_id + i):
                st = skip(type_id)
                for m_name, m_type, _bits, _bsz in st.members if st.kind == B.STRUCT else ():
                    ptr = btf.type(m_type)
                    if btf.name(m_name) == "pinning" and ptr.kind == B.PTR:
                        arr = btf.type(ptr.size_or_type)
                        if arr.kind == B.ARRAY and arr.members[2] == 1:
                            out.append(name)
        return out
    except (OSError, ValueError, IndexError, KeyError, AttributeError, TypeError, struct.error):
        return []


_lock_state = {"depth": 0}


@contextlib.contextmanager
def _bpffs_lock(exclusive: bool):
    """Serialises, across concurrent pytest sessions on this machine, the loads that pin
    at the top of /sys/fs/bpf (and the session's leak check) with one flock; re-entrant
    within this process (a test may load several such objects)."""
    if _lock_state["depth"]:
        _lock_state["depth"] += 1
        try:
            yield
        finally:
            _lock_state["depth"] -= 1
        return
    os.makedirs(os.path.dirname(_BYNAME_LOCK), exist_ok=True)
    with open(_BYNAME_LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        _lock_state["depth"] = 1
        try:
            yield
        finally:
            _lock_state["depth"] = 0
            fcntl.flock(f, fcntl.LOCK_UN)


def _bpffs_entries() -> set[str]:
    try:
        return set(os.listdir(BPFFS))
    except OSError:
        return set()


@contextlib.contextmanager
def byname_pins_removed(names: list[str] | None):
    """Around loads of objects whose maps pin by name: afterwards, remove every pin that
    appeared at ``/sys/fs/bpf/<name>`` meanwhile (for ``name`` in ``names``, or any new
    top-level pin file with ``names=None``), whether bpftool or bpft made it. A pin
    that was there before is someone else's and stays (libbpf reuses it)."""
    with _bpffs_lock(exclusive=True):
        before = _bpffs_entries()
        try:
            yield
        finally:
            for name in sorted(_bpffs_entries() - before):
                path = os.path.join(BPFFS, name)
                if (names is None or name in names) and not os.path.isdir(path):
                    with contextlib.suppress(OSError):
                        os.unlink(path)


_OTHER_SESSION = re.compile(r"bpft_(?:test|fuzz)_(\d+)_")


def _foreign(name: str) -> bool:
    """An entry made by another live test process (its pid is in the name)."""
    m = _OTHER_SESSION.match(name)
    if not m or int(m.group(1)) == os.getpid():
        return False
    return os.path.exists(f"/proc/{m.group(1)}")


@pytest.fixture(scope="session", autouse=True)
def bpffs_leak_check():
    """Fail the session loudly if its tests left anything new in /sys/fs/bpf.

    Entries present when the session started are ignored (they are not ours),
    and so are the scratch dirs of other live test processes on this machine.
    """
    if not os.path.ismount(BPFFS) or os.geteuid() != 0:
        yield
        return
    with _bpffs_lock(exclusive=False):
        before = _bpffs_entries()
    yield
    left: list[str] = []
    for _ in range(20):  # a concurrent session's teardown may be under way
        with _bpffs_lock(exclusive=False):
            left = sorted(n for n in _bpffs_entries() - before if not _foreign(n))
        if not left:
            return
        time.sleep(0.1)
    pytest.fail(f"tests left entries in {BPFFS} (remove them, and fix the test that made them): {left}", pytrace=False)
