"""Plugins for the platform tests: in-process objects, and installed distributions on a
directory that a test puts on ``sys.path`` (or ``PYTHONPATH``)."""

from __future__ import annotations

import contextlib
import os
import textwrap
from pathlib import Path

from bpft import Command, HelpLine, OptionSpec, Record, hookimpl

SOCKET_FILTER = 1
RETURN_ZERO = bytes.fromhex("b7000000000000009500000000000000")  # r0 = 0; exit


@contextlib.contextmanager
def loaded_program(name: str):
    """A socket filter loaded for the test (its fd held, closed afterwards): its id."""
    from bpft.kernel import info, syscall

    fd = syscall.prog_load_simple(SOCKET_FILTER, RETURN_ZERO, name=name)
    try:
        yield info.prog_info(fd).id
    finally:
        os.close(fd)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def echo_options(ctx, args) -> int:
    """A bpft handler: prints the plugin options it sees and its words."""
    ctx.emitter.record(
        Record(
            {"zap": ctx.options.get("zap"), "color": ctx.options.get("color"), "words": args.rest()},
            f"zap={ctx.options.get('zap')} color={ctx.options.get('color')} words={' '.join(args.rest())}\n",
        )
    )
    return 0


class OptionsPlugin:
    """Adds two global options (a flag and one with a value), a clashing one, and a verb."""

    @hookimpl
    def bpft_global_options(self):
        return [
            OptionSpec("Z", "zap", "zap", help="zap everything"),
            OptionSpec("", "color", "color", takes_value=True),
            OptionSpec("j", "jolly", "jolly"),  # -j is bpftool's: ignored
        ]

    @hookimpl
    def bpft_commands(self):
        return [Command("prog", "echo", echo_options, usage=("{bin} {obj} echo [WORDS]",))]


class PositionPlugin:
    @hookimpl
    def bpft_commands(self):
        return [
            Command("prog", "placed", echo_options, usage=("{bin} {obj} placed",), position="after load"),
            Command("prog", "unplaced", echo_options, usage=("{bin} {obj} unplaced",)),
        ]

    @hookimpl
    def bpft_help_lines(self):
        return [HelpLine("prog", "COLOR := { red | green | blue }", 60)]


def install(site: Path, dist: str, version: str, module: str, source: str, entry: str = "") -> Path:
    """A distribution ``dist`` on ``site`` with one ``bpft.plugins`` entry point for ``module``
    (its text ``source``); returns the module's file."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n\nA test plugin.\n")
    (info / "entry_points.txt").write_text(f"[bpft.plugins]\n{entry or dist} = {module}\n")
    path = site / f"{module}.py"
    path.write_text(textwrap.dedent(source))
    return path


VERB_SOURCE = """
    import bpft

    @bpft.hookimpl
    def bpft_commands():
        return [bpft.Command("prog", "{verb}", "{module}:run", usage=("{{bin}} {{obj}} {verb}",))]

    def run(ctx, args):
        ctx.emitter.text("{verb} ran\\n")
"""


def verb_source(verb: str, module: str) -> str:
    return VERB_SOURCE.format(verb=verb, module=module)
