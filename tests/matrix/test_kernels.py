"""The kernel matrix from the host: boot kernels, run this folder's suite inside each.

``BPFT_KMATRIX`` names the kernels to boot ("5.10 6.1", or "all"); unset, these tests
skip (each guest takes minutes). ``scripts/kernel.sh fetch [SERIES...]`` puts kernels in
the cache; each one named is booted (virtme-ng, TCG where KVM cannot run stock kernels)
and must pass ``tests/matrix`` against the bpftool inside it. A kernel named but not
fetched skips, saying how to fetch it. The guests named all start at once
(``KMATRIX_PARALLEL`` at a time, default the host's CPU count). Each guest's output is kept in ``$BPFT_KMATRIX_LOGS`` (default: pytest's
temporary directory) and its skips are repeated here.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KERNEL_SH = ROOT / "scripts" / "kernel.sh"
SERIES = ["5.10", "6.1", "6.12", "6.18", "7.2"]
GUEST_TIMEOUT = int(os.environ.get("KMATRIX_TIMEOUT", "1800"))

pytestmark = [pytest.mark.slow, pytest.mark.matrix]


def fetched() -> list[str]:
    r = subprocess.run(["bash", str(KERNEL_SH), "list"], capture_output=True, text=True)
    return r.stdout.split()


def release_of(series: str, releases: list[str]) -> str | None:
    hits = [r for r in releases if r.startswith(series) and not r[len(series)].isdigit()]
    return sorted(hits)[-1] if hits else None


class GuestRun:
    """One kernel's suite, run in the background (a thread drains QEMU's pipe: vng hands it
    pipes, never a file it would truncate). ``result()`` waits for it."""

    def __init__(self, rel: str, logs: Path, slots: threading.Semaphore):
        self.rel, self.logs, self.slots = rel, logs, slots
        self.cmd = [
            "bash",
            str(KERNEL_SH),
            rel,
            "--",
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rs",
            "--durations=8",
            "tests/matrix",
            "--deselect",
            "tests/matrix/test_kernels.py",
        ]
        self.cancelled = False  # set by stop(): a guest still waiting for a slot never starts
        self.proc: subprocess.Popen[bytes] | None = None
        self.status: int | None = None
        self.text = ""
        self.elapsed = 0.0
        self.thread = threading.Thread(target=self._run, name=f"guest {rel}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with self.slots:  # at most KMATRIX_PARALLEL guests at once, each on its own CPU
            if self.cancelled:
                return
            start = time.monotonic()
            env = {**os.environ, "KMATRIX_TIMEOUT": str(GUEST_TIMEOUT)}
            # its own session: on a timeout the whole group goes (kernel.sh, vng, QEMU)
            proc = self.proc = subprocess.Popen(
                self.cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                out, _ = proc.communicate(timeout=GUEST_TIMEOUT + 60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out, _ = proc.communicate()
            self.elapsed = time.monotonic() - start
            self.status = proc.returncode
            self.text = out.decode(errors="replace")

    def result(self) -> GuestRun:
        self.thread.join()
        return self

    def stop(self) -> None:
        """Kill the guest's whole process group if it still runs (pytest ending early)."""
        self.cancelled = True
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.thread.join(timeout=30)


def wanted_series() -> list[str]:
    wanted = os.environ.get("BPFT_KMATRIX", "").split()
    return SERIES if "all" in wanted else [s for s in SERIES if s in wanted]


@pytest.fixture(scope="module")
def guest_runs(tmp_path_factory) -> Iterator[dict[str, GuestRun]]:
    """Every wanted and fetched kernel's suite, all started at once (``KMATRIX_PARALLEL``
    at a time, default the host's CPU count: each guest has one CPU), so that the matrix
    takes as long as its slowest guests rather than their sum."""
    if os.environ.get("KMATRIX_GUEST"):
        yield {}
        return
    logs = Path(os.environ.get("BPFT_KMATRIX_LOGS") or tmp_path_factory.mktemp("kmatrix"))
    logs.mkdir(parents=True, exist_ok=True)
    slots = threading.Semaphore(int(os.environ.get("KMATRIX_PARALLEL") or os.cpu_count() or 1))
    releases = fetched() if wanted_series() else []
    runs = {}
    for series in wanted_series():
        rel = release_of(series, releases)
        if rel is not None:
            runs[series] = GuestRun(rel, logs, slots)
    try:
        yield runs
    finally:
        for run in runs.values():
            run.stop()


@pytest.mark.parametrize("series", SERIES)
def test_suite_passes_in_kernel(series, guest_runs):
    if os.environ.get("KMATRIX_GUEST"):
        pytest.skip("inside a guest already")
    if series not in wanted_series():
        pytest.skip(f"kernel {series} not asked for (BPFT_KMATRIX='{series}' or 'all' boots it)")
    if series not in guest_runs:
        pytest.skip(f"kernel {series} not fetched (scripts/kernel.sh fetch {series})")
    run = guest_runs[series].result()
    log = run.logs / f"{run.rel}.log"
    log.write_text(f"# {' '.join(run.cmd)}\n# {run.elapsed:.0f} s, status {run.status}\n{run.text}")
    summary = [x for x in run.text.splitlines() if re.match(r"(SKIPPED|FAILED|ERROR) |=+ .* in [\d.]+s", x)]
    print(f"\n{run.rel}: {run.elapsed:.0f} s in the guest, log {log}\n" + "\n".join(summary))
    assert run.status == 0, f"{run.rel}: the suite failed in the guest (log {log}):\n{run.text[-4000:]}"
    assert re.search(r"\d+ passed", run.text), run.text[-2000:]
