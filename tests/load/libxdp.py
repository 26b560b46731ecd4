"""Fixtures of Debian's libxdp1 objects, for the loader's tests (import them into a test module)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def libxdp_dir(tmp_path_factory) -> Path:
    """Debian's libxdp1, unpacked: ``$BPFT_LIBXDP_DIR``, else ``apt-get download``ed once."""
    d = os.environ.get("BPFT_LIBXDP_DIR")
    if d:
        return Path(d)
    tmp = tmp_path_factory.mktemp("libxdp")
    try:
        r = subprocess.run(["apt-get", "download", "libxdp1"], cwd=tmp, capture_output=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("cannot download libxdp1")
    debs = list(tmp.glob("libxdp1_*.deb"))
    if r.returncode or not debs:
        pytest.skip("cannot download libxdp1")
    subprocess.run(["dpkg", "-x", str(debs[0]), str(tmp / "x")], check=True)
    return tmp / "x"


@pytest.fixture(scope="session")
def libxdp_objects(libxdp_dir: Path) -> list[Path]:
    objs = sorted(libxdp_dir.rglob("*.o"))
    if not objs:
        pytest.skip("no objects in libxdp1")
    return objs
