"""mypy over core and the plugins, with the configuration in core/pyproject.toml.

Run by hand: python -m mypy --config-file core/pyproject.toml core/src/bpft plugins/*/src/* \
    examples/bpft-count/src/bpft_count
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

try:
    from mypy import api as mypy_api
except ImportError:
    mypy_api = None


@pytest.mark.skipif(mypy_api is None, reason="mypy is not installed (pip install mypy)")
def test_core_and_plugins_type_check(tmp_path):
    targets = [
        ROOT / "core" / "src" / "bpft",
        *sorted(p for p in ROOT.glob("plugins/*/src/*") if p.is_dir() and p.name.isidentifier()),
        ROOT / "examples" / "bpft-count" / "src" / "bpft_count",
    ]
    out, err, status = mypy_api.run(
        ["--config-file", str(ROOT / "core" / "pyproject.toml"), "--cache-dir", str(tmp_path), *map(str, targets)]
    )
    assert status == 0, out + err
