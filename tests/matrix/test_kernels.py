"""The kernel matrix from the host: boot kernels, run this folder's suite inside each.

``BPFT_KMATRIX`` names the kernels to boot ("5.10 6.1", or "all"); unset, these tests
skip (each guest takes minutes). ``scripts/kernel.sh fetch [SERIES...]`` puts kernels in
the cache; each one named is booted (virtme-ng, TCG where KVM cannot run stock kernels)
and must pass ``tests/matrix`` against the bpftool inside it. A kernel named but not
fetched skips, saying how to fetch it. Each guest's output is kept in ``$BPFT_KMATRIX_LOGS`` (default: pytest's
temporary directory) and its skips are repeated here.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
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


@pytest.mark.parametrize("series", SERIES)
def test_suite_passes_in_kernel(series, tmp_path_factory):
    if os.environ.get("KMATRIX_GUEST"):
        pytest.skip("inside a guest already")
    wanted = os.environ.get("BPFT_KMATRIX", "").split()
    if series not in wanted and "all" not in wanted:
        pytest.skip(f"kernel {series} not asked for (BPFT_KMATRIX='{series}' or 'all' boots it)")
    rel = release_of(series, fetched())
    if rel is None:
        pytest.skip(f"kernel {series} not fetched (scripts/kernel.sh fetch {series})")
    logs = Path(os.environ.get("BPFT_KMATRIX_LOGS") or tmp_path_factory.mktemp("kmatrix"))
    logs.mkdir(parents=True, exist_ok=True)
    cmd = [
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
    start = time.monotonic()
    # its own session: on a timeout the whole group goes (kernel.sh, vng, QEMU)
    env = {**os.environ, "KMATRIX_TIMEOUT": str(GUEST_TIMEOUT)}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=GUEST_TIMEOUT + 60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    elapsed = time.monotonic() - start
    text = out.decode(errors="replace")
    log = logs / f"{rel}.log"
    log.write_text(f"# {' '.join(cmd)}\n# {elapsed:.0f} s, status {proc.returncode}\n{text}")
    summary = [x for x in text.splitlines() if re.match(r"(SKIPPED|FAILED|ERROR) |=+ .* in [\d.]+s", x)]
    print(f"\n{rel}: {elapsed:.0f} s in the guest, log {log}\n" + "\n".join(summary))
    assert proc.returncode == 0, f"{rel}: the suite failed in the guest (log {log}):\n{text[-4000:]}"
    assert re.search(r"\d+ passed", text), text[-2000:]
