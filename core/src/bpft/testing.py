"""Run bpft in this process, with the plugins a test chooses: ``bpft.testing.run``.

For plugin authors (``tests/test_*.py`` of a plugin) and for harnesses that run many
bpft commands in one process (a kernel matrix inside slow VMs, where a new interpreter
per command costs more than the command)::

    from bpft.testing import run
    from my_plugin import plugin

    status, out, err = run(["-j", "prog", "tally"], plugins=[plugin])
    assert status == 0 and json.loads(out) == {...}

Each call builds its registry afresh (never from the plugin cache), captures what the
command writes to ``sys.stdout`` and ``sys.stderr``, and leaves nothing behind: no
active context, and no file the core kept open for speed. A verb that writes to file
descriptor 1 itself (``prog tracelog``) cannot be captured this way.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable, Sequence

from .records import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

    from .plugins import Registry


class _Capture(io.TextIOWrapper):
    """A text stream into memory that looks like a terminal's (``.buffer``, ``.encoding``)."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", errors="backslashreplace", newline="\n", write_through=True)

    def text(self) -> str:
        self.flush()
        raw: bytes = self.buffer.getvalue()  # type: ignore[attr-defined]
        return raw.decode("utf-8", errors="replace")


def registry(plugins: Iterable[Any] = (), installed: bool = True) -> Registry:
    """The registry :func:`run` uses: the installed plugins (unless ``installed=False``:
    the core's own only), then ``plugins`` (modules or objects with ``@bpft.hookimpl``
    functions; one already loaded from its entry point is not registered twice)."""
    from .plugins import Registry

    return Registry(load_entry_points=installed, plugins=list(plugins), use_cache=False)


def run(argv: Sequence[str], plugins: Iterable[Any] = (), installed: bool = True) -> tuple[int, str, str]:
    """Run ``bpft ARGV...`` in this process; ``(exit status, stdout, stderr)``.

    ``plugins`` and ``installed`` are :func:`registry`'s. Safe to call any number of
    times in one process.
    """
    from . import cli
    from .kernel import fs

    reg = registry(plugins, installed)
    out, err = _Capture(), _Capture()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        try:
            status = cli.main(list(argv), registry=reg)
        except SystemExit as e:  # a verb that exits by itself
            status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.stdout, sys.stderr = saved
        fs._forget_fdinfo_dir()  # the fdinfo files a listing keeps open for the next one
    return status, out.text(), err.text()
