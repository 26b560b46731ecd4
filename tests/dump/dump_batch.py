"""Run many command lines of bpft and bpftool at once, for the dump tests' comparisons.

A bpft command costs ~0.3 s of interpreter start-up and imports before it does
anything; the dump tests compare hundreds of them with bpftool. So the bpft side
of a batch runs in one fresh interpreter (this file, run as a script): every
command goes through ``bpft.cli.main(argv)``, the function the ``bpft`` console
script calls, with its own stdout/stderr buffers. The per-process /proc/kallsyms
table is read once per batch: the programs a batch dumps are all loaded before
it starts, so the table each real run would read has the same symbols for
them. Meanwhile the bpftool
side runs as ordinary subprocesses on a few threads. Tests that are about the
process itself (exit codes of usage errors, files written, capstone imports)
still run the real ``bpft`` executable.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


@dataclass
class Result:
    returncode: int
    stdout_text: str
    stderr_text: str


def _bpftool(argv: list[str]) -> Result:
    p = subprocess.run(["bpftool", *argv], capture_output=True, timeout=120)
    return Result(p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))


def run_both(cmds: list[list[str]], jobs: int = 3) -> list[tuple[Result, Result]]:
    """(bpft's, bpftool's) result of each command line (arguments after the program name)."""
    proc = _start(cmds)
    with ThreadPoolExecutor(jobs) as pool:
        theirs = list(pool.map(_bpftool, cmds))
    return list(zip(_finish(proc, cmds), theirs, strict=True))


def run_bpft_many(cmds: list[list[str]]) -> list[Result]:
    """bpft's result of each command line."""
    return _finish(_start(cmds), cmds)


def _start(cmds: list[list[str]]) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdin.write(json.dumps(cmds).encode())
    proc.stdin.close()
    proc.stdin = None  # the child reads all of it before it writes anything
    return proc


def _finish(proc: subprocess.Popen, cmds: list[list[str]]) -> list[Result]:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode(errors="replace")
    ours = [
        Result(rc, base64.b64decode(o).decode(errors="replace"), base64.b64decode(e).decode(errors="replace"))
        for rc, o, e in json.loads(out)
    ]
    assert len(ours) == len(cmds)
    return ours


def _serve() -> None:
    cmds = json.load(sys.stdin)
    real_out, real_err = sys.stdout, sys.stderr
    from bpft import cli

    results = []
    for argv in cmds:
        out, err = io.BytesIO(), io.BytesIO()
        sys.stdout = io.TextIOWrapper(out, encoding="utf-8", errors="surrogateescape")
        sys.stderr = io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace")
        try:
            rc = cli.main(list(argv))
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        except BaseException:  # the console script would print this traceback
            traceback.print_exc()
            rc = 1
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = real_out, real_err
        results.append(
            [rc & 0xFF, base64.b64encode(out.getvalue()).decode(), base64.b64encode(err.getvalue()).decode()]
        )
    json.dump(results, real_out)


if __name__ == "__main__":
    _serve()
