"""Run bpft inside this Python process: ``run(argv) -> (status, stdout, stderr)``.

Under an emulated guest (TCG) a new Python process costs seconds, so the matrix
suite calls bpft's ``cli.main`` in-process. stdout and stderr go to real
temporary files (tracelog writes through ``fileno()``); ``SystemExit`` is
caught. One module, so a shared ``bpft.testing.run`` can replace it later.
"""

from __future__ import annotations

import sys
import tempfile
from typing import NamedTuple


class Result(NamedTuple):
    status: int
    stdout: str
    stderr: str


def run(argv: list[str] | tuple[str, ...]) -> Result:
    """bpft ``argv`` (without the program name), as the command line would run it."""
    from bpft import cli

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        try:
            status = cli.main(list(argv))
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        finally:
            sys.stdout, sys.stderr = saved
        out.seek(0)
        err.seek(0)
        return Result(status, out.read(), err.read())
