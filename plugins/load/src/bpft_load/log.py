"""Where the loader's messages go: libbpf's warnings and, when asked for, its debug lines.

The loader never prints. Each message goes to the ``sink`` the caller gives
(``sink(level, text)``, level ``"warn"``, ``"info"`` or ``"debug"``, text without
the ``libbpf: `` prefix), in the order libbpf would print it; the CLI's sink writes
``libbpf: TEXT`` to stderr as bpftool does. Without a sink, messages are dropped
(the errors raised carry what matters); :func:`logging_sink` sends them to the
``bpft_load`` :mod:`logging` logger instead. (:mod:`logging` is not imported
otherwise: its import is a measurable part of a load, docs/design-notes.md.)
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from .errors import LoadError, OpenError

Sink = Callable[[str, str], None]

# what bpftool -d asks the verifier for: BPF_LOG_LEVEL1 | BPF_LOG_LEVEL2 | BPF_LOG_STATS
VERIFIER_LOG_EVERYTHING = 1 | 2 | 4


def _discard(level: str, text: str) -> None:
    pass


def logging_sink(name: str = "bpft_load") -> Sink:
    """A sink that hands each message to the :mod:`logging` logger ``name`` (warnings at
    WARNING, info at INFO, debug lines at DEBUG)."""
    import logging

    logger = logging.getLogger(name)
    levels = {"warn": logging.WARNING, "info": logging.INFO, "debug": logging.DEBUG}

    def sink(level: str, text: str) -> None:
        logger.log(levels[level], "%s", text)

    return sink


class Log:
    """libbpf's print levels. ``debug_on`` says whether debug lines are wanted at all
    (callers test it before building an expensive line)."""

    __slots__ = ("debug_on", "sink", "last_warning")

    def __init__(self, debug: bool = False, sink: Sink | None = None):
        self.debug_on = debug
        self.sink = sink or _discard
        self.last_warning = ""  # what an error raised after the warning repeats

    def warn(self, msg: str) -> None:
        self.last_warning = msg
        self.sink("warn", msg)

    def info(self, msg: str) -> None:
        self.sink("info", msg)

    def debug(self, msg: str) -> None:
        if self.debug_on:
            self.sink("debug", msg)

    def open_error(self, msg: str, **context) -> OpenError:
        """Warn ``msg`` and return the OpenError that carries it (for ``raise``)."""
        self.warn(msg)
        return OpenError(msg, **context)

    def load_error(self, msg: str, **context) -> LoadError:
        """Warn ``msg`` and return the LoadError that carries it (for ``raise``)."""
        self.warn(msg)
        return LoadError(msg, **context)


def cli_log(debug: bool) -> Log:
    """The loader's messages as bpftool prints libbpf's: ``libbpf: TEXT`` on stderr, in order
    with what was written to stdout."""

    def write(_level: str, text: str) -> None:
        sys.stdout.flush()
        sys.stderr.write(f"libbpf: {text}\n")

    return Log(debug, write)
