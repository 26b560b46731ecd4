"""The full-screen view in a real terminal: tmux runs ``bpft prog top``, send-keys sorts,
filters, selects, resizes and quits, capture-pane reads the screen, and ``stty -g``
before and after shows the terminal restored."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid

import pytest
from bpft.kernel import info
from conftest import bpft_cmd
from top_kit import drive, load_return_zero

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed"),
]


class Pane:
    """A detached tmux session running an interactive shell."""

    def __init__(self, tmp_path, width: int = 120, height: int = 30):
        self.name = f"bpft_top_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.tmp = tmp_path
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
             "env", "PS1=$ ", "bash", "--norc", "--noprofile"],
            check=True,
        )  # fmt: skip

    def keys(self, *keys: str, literal: bool = False) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *(["-l"] if literal else []), *keys], check=True)

    def type(self, line: str) -> None:
        self.keys(line, literal=True)
        self.keys("Enter")

    def screen(self) -> list[str]:
        out = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True)
        return out.stdout.splitlines()

    def wait(self, predicate, what: str, timeout: float = 20.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            lines = self.screen()
            if predicate(lines):
                return lines
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen:\n" + "\n".join(lines))
            time.sleep(0.1)

    def resize(self, width: int, height: int) -> None:
        subprocess.run(["tmux", "resize-window", "-t", self.name, "-x", str(width), "-y", str(height)], check=True)

    def stty(self, label: str) -> str:
        path = self.tmp / f"stty_{label}"
        self.type(f"stty -g > {path}; echo done_{label}")
        self.wait(lambda lines: any(line == f"done_{label}" for line in lines), f"stty {label}")
        return path.read_text()

    def start_top(self, *options: str, words: tuple[str, ...] = ()) -> None:
        """``bpft prog top`` in the shell, which prints ``top_exit_STATUS`` once it ends."""
        self.type(" ".join([*bpft_cmd(), *options, "prog", "top", *words, "interval", "0.3"]) + "; echo top_exit_$?")

    def wait_exit(self) -> list[str]:
        """The screen once top has ended with status 0 and the shell has its prompt again."""
        # (after a Ctrl-C that only bpft saw, the shell's echo follows the terminal's "^C")
        return self.wait(lambda lines: any(line.endswith("top_exit_0") for line in lines), "top to end with status 0")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture
def pane(tmp_path):
    p = Pane(tmp_path)
    yield p
    p.close()


@pytest.fixture
def programs():
    """Three socket filters with names no one else uses: {suffix: (fd, id)}; the prefix."""
    prefix = f"v{uuid.uuid4().hex[:6]}_"
    made = {}
    try:
        for suffix in ("alpha", "beta", "gamma"):
            fd = load_return_zero(prefix + suffix)
            made[suffix] = (fd, info.prog_info(fd).id)
        yield made, prefix
    finally:
        for fd, _ in made.values():
            os.close(fd)


def table_rows(lines: list[str], prefix: str) -> list[tuple[int, str]]:
    """(id, name) of the program rows on the screen whose name starts with ``prefix``."""
    titles = lines[2].split() if len(lines) > 2 else []
    if "NAME" not in titles:
        return []
    at = titles.index("NAME")
    return [(int(row[0]), row[at]) for row in all_program_rows(lines) if len(row) > at and row[at].startswith(prefix)]


def all_program_rows(lines: list[str]) -> list[list[str]]:
    return [line.split() for line in lines[3:-2] if line.split()[:1] and line.split()[0].isdigit()]


HEADER = re.compile(r"^bpft prog top  \d\d:\d\d:\d\d  interval 0.3s")


def test_sort_filter_select_resize_quit(pane, programs):
    made, prefix = programs
    ids = {suffix: prog_id for suffix, (_, prog_id) in made.items()}
    names = {suffix: prefix + suffix for suffix in made}
    before = pane.stty("before")
    pane.start_top()
    pane.wait(lambda lines: lines and HEADER.match(lines[0]) and "programs " in lines[0], "the first interval")

    pane.keys("/")
    pane.keys(prefix, literal=True)
    pane.keys("Enter")

    def filtered(lines):  # our three programs, and nothing else
        shown = all_program_rows(lines)
        return f"filter: {prefix}" in lines[1] and len(shown) == 3 == len(table_rows(lines, prefix))

    lines = pane.wait(filtered, "the filter")
    # a filter being typed applies as it is typed; Esc puts the one before back
    pane.keys("/")
    pane.keys("zz", literal=True)
    pane.wait(lambda lines: f"filter: {prefix}zz_" in lines[1] and not all_program_rows(lines), "typing a filter")
    pane.keys("Escape")
    lines = pane.wait(lambda lines: filtered(lines) and lines[1].endswith(f"filter: {prefix}"), "Esc")
    assert "(shown 3)" in lines[0]
    assert lines[2].split() == ["ID", "TYPE", "NAME", "EVENTS/S", "AVG_NS", "CPU%", "RUN_CNT", "RUN_TIME_NS", "PIDS"]

    def order(lines):
        return [name for _, name in table_rows(lines, prefix)]

    # every check is a state the screen must reach: a capture may catch a redraw half done
    pane.keys("n")
    pane.wait(
        lambda lines: (
            "sort: name " in lines[1] + " " and order(lines) == [names[s] for s in ("alpha", "beta", "gamma")]
        ),
        "sort by name",
    )
    pane.keys("n")
    pane.wait(
        lambda lines: (
            "sort: name reversed" in lines[1] and order(lines) == [names[s] for s in ("gamma", "beta", "alpha")]
        ),
        "sort by name, reversed",
    )

    # run beta: it leads by total run time, and once selected its sparkline is at the bottom
    drive(made["beta"][0], 5000)
    pane.keys("r")

    def beta_leads(lines):
        rows = [line.split() for line in lines[3:-2] if line.split()[:1] == [str(ids["beta"])]]
        return "sort: runtime" in lines[1] and order(lines)[:1] == [names["beta"]] and int(rows[0][6]) >= 5000

    pane.wait(beta_leads, "sort by runtime")
    pane.keys("Home")
    pane.wait(lambda lines: lines[-2].startswith(f"{ids['beta']} {names['beta']}  cpu% "), "the sparkline")
    pane.keys("m")
    pane.wait(lambda lines: lines[-2].startswith(f"{ids['beta']} {names['beta']}  events/s "), "events/s sparkline")
    pane.keys("i")
    pane.wait(
        lambda lines: "sort: id" in lines[1] and [i for i, _ in table_rows(lines, prefix)] == sorted(ids.values()),
        "sort by id",
    )

    # a narrower terminal: drawn again, every line fits, the least important columns go first
    pane.resize(60, 20)
    lines = pane.wait(
        lambda lines: (
            len(lines) == 20
            and lines[2].split()[:1] == ["ID"]
            and "PIDS" not in lines[2]
            and len(table_rows(lines, prefix)) == 3
        ),
        "a redraw at 60 columns",
    )
    assert max(len(line) for line in lines) <= 60
    assert {"ID", "NAME", "CPU%"} <= set(lines[2].split())

    pane.keys("q")
    lines = pane.wait_exit()
    assert not any(HEADER.match(line) for line in lines)  # the shell's screen is back
    assert pane.stty("after") == before


def test_ctrl_c_restores_the_terminal(pane):
    before = pane.stty("before")
    pane.start_top()
    pane.wait(lambda lines: lines and HEADER.match(lines[0]), "the view")
    pane.keys("C-c")
    lines = pane.wait_exit()
    assert not any(HEADER.match(line) for line in lines)
    assert pane.stty("after") == before


def test_table_on_a_terminal_prints_tables(pane, programs):
    made, _ = programs
    pane.start_top("--table", words=("id", str(made["alpha"][1])))
    titles = ["id", "type", "name", "events/s", "avg_ns", "cpu%", "run_cnt", "run_time_ns", "pids"]
    pane.wait(lambda lines: sum(line.split() == titles for line in lines) >= 2, "two intervals' tables")
    pane.keys("C-c")
    lines = pane.wait_exit()
    assert not any(HEADER.match(line) for line in lines)  # never the full-screen view
