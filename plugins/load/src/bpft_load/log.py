"""libbpf-style messages: warnings always (``libbpf: ...`` on stderr), debug lines with -d."""

from __future__ import annotations

import sys


class Log:
    def __init__(self, debug: bool = False):
        self.debug_on = debug

    def warn(self, msg: str) -> None:
        sys.stdout.flush()
        sys.stderr.write(f"libbpf: {msg}\n")

    def info(self, msg: str) -> None:
        self.warn(msg)

    def debug(self, msg: str) -> None:
        if self.debug_on:
            sys.stdout.flush()
            sys.stderr.write(f"libbpf: {msg}\n")
