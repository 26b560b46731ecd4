"""A minimal host: a fresh venv with only bpft-core and bpft-show installed."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from conftest import ROOT


@pytest.fixture(scope="module")
def minimal_venv(tmp_path_factory):
    path = tmp_path_factory.mktemp("minimal")
    venv.EnvBuilder(with_pip=True).create(path)
    py = path / "bin" / "python"
    proc = subprocess.run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            str(ROOT / "core"),
            str(ROOT / "plugins" / "show"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot build the venv here (no package index?): {proc.stderr[-300:]}")
    return path


@pytest.mark.slow
def test_show_and_help_work_and_import_nothing_heavy(minimal_venv):
    py = str(minimal_venv / "bin" / "python")
    bpft = str(minimal_venv / "bin" / "bpft")
    listed = subprocess.run([py, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True).stdout
    for heavy in ("capstone", "pyelftools", "typer", "pydantic", "rich"):  # core needs pluggy and tabulate only
        assert heavy not in listed.lower(), listed

    helptext = subprocess.run([bpft, "prog", "help"], capture_output=True, text=True)
    assert helptext.returncode == 0
    assert "bpft prog { show | list } [PROG]" in helptext.stderr
    assert "dump" not in helptext.stderr

    missing = subprocess.run([bpft, "prog", "dump", "xlated", "id", "1"], capture_output=True, text=True)
    assert missing.returncode == 255
    assert missing.stderr == "Error: 'dump' is not installed: it comes with bpft-dump (pip install bpft-dump)\n"

    code = (
        "import sys; from bpft import cli; rc = cli.main(['prog', 'show']);"
        "print([m for m in sys.modules if m.split('.')[0] in ('capstone', 'elftools')])"
    )
    proc = subprocess.run([py, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stderr
    if os.geteuid() == 0:
        show = subprocess.run([bpft, "-j", "prog", "show"], capture_output=True, text=True)
        assert show.returncode == 0, show.stderr
        ref = subprocess.run([sys.executable, "-m", "bpft", "-j", "prog", "show"], capture_output=True, text=True)
        assert Path("/proc/self").exists() and show.stdout.startswith("[")
        assert ref.returncode == 0
