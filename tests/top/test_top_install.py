"""A host with only bpft-core and bpft-top: ``pip install ./core ./plugins/top`` is enough for top."""

from __future__ import annotations

import json
import os
import subprocess
import venv

import pytest
from conftest import ROOT


@pytest.fixture(scope="module")
def top_venv(tmp_path_factory):
    path = tmp_path_factory.mktemp("top_only")
    venv.EnvBuilder(with_pip=True).create(path)
    proc = subprocess.run(
        [str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         str(ROOT / "core"), str(ROOT / "plugins" / "top")],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.skip(f"cannot build the venv here (no package index?): {proc.stderr[-300:]}")
    return path


@pytest.mark.slow
def test_top_works_with_core_alone(top_venv):
    py, bpft = str(top_venv / "bin" / "python"), str(top_venv / "bin" / "bpft")
    listed = subprocess.run([py, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True).stdout
    dists = {line.split("==")[0].lower() for line in listed.splitlines()}
    assert {"bpft-core", "bpft-top"} <= dists and not dists & {"bpft-show", "bpft-run", "bpft-load"}

    helptext = subprocess.run([bpft, "prog", "help"], capture_output=True, text=True)
    assert "bpft prog top [PROG] [interval SECONDS] [count N] [sort SORT]" in helptext.stderr
    assert "show" not in helptext.stderr

    if os.geteuid() == 0:
        proc = subprocess.run(
            [bpft, "-j", "prog", "top", "interval", "0.1", "count", "2"], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        lines = [json.loads(line) for line in proc.stdout.splitlines()]
        assert len(lines) == 2 and all(list(line) == ["time", "interval_s", "programs"] for line in lines)
        plain = subprocess.run([bpft, "prog", "top", "interval", "0.1", "count", "1"], capture_output=True, text=True)
        assert plain.returncode == 0 and plain.stdout.splitlines()[1].split()[:3] == ["ID", "TYPE", "NAME"]
