"""The README's two fresh-machine commands: CI runs the test command as written."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    """The commands of the README's first ``sh`` block (comment lines dropped)."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "README.md has no sh block"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_readme_starts_with_two_commands():
    commands = readme_commands()
    assert len(commands) == 2, commands
    setup, test = commands
    assert setup.startswith("bash scripts/setup.sh &&") and "bpft prog show" in setup
    assert test.startswith("bash scripts/setup.sh --test &&") and "pytest" in test


def test_ci_runs_the_readme_test_command_as_written():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci_lines
