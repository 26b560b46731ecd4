"""The core's own features, as an ordinary plugin of the contract in ``hookspecs``.

It provides the ``prog help`` verb, the MAP/PROG/OPTIONS grammar lines, the
``id``/``tag``/``name``/``pinned`` handles and the plain, JSON and table
output formats.
"""

from __future__ import annotations

from .api import Command, HandleKind, HelpLine, OutputFormat
from .formats import make_json, make_plain, make_table
from .grammar import OptionSpec
from .hookspecs import hookimpl

HELP_SPEC_MAP = "MAP := { id MAP_ID | pinned FILE | name MAP_NAME }"
HELP_SPEC_PROGRAM = "PROG := { id PROG_ID | pinned FILE | tag PROG_TAG | name PROG_NAME }"
HELP_SPEC_OPTIONS = "OPTIONS := { {-j|--json} [{-p|--pretty}] | {-d|--debug} | {-l|--legacy}"


@hookimpl
def bpft_commands() -> list[Command]:
    return [
        Command(
            "prog",
            "help",
            "bpft.cli:prog_help",
            rank=30,
            usage=("{bin} {obj} help",),
            usage_rank=10_000,
            summary="print this help",
            distribution="bpft-core",
        )
    ]


@hookimpl
def bpft_help_lines() -> list[HelpLine]:
    return [
        HelpLine("prog", HELP_SPEC_MAP, 10),
        HelpLine("prog", HELP_SPEC_PROGRAM, 20),
        HelpLine(
            "prog",
            HELP_SPEC_OPTIONS + " |\n"
            "                    {-f|--bpffs} | {-m|--mapcompat} | {-n|--nomount} |\n"
            "                    {-L|--use-loader} }",
            1000,
        ),
    ]


@hookimpl
def bpft_handle_kinds() -> list[HandleKind]:
    """The handles bpftool knows (``id``, ``tag``, ``name``, ``pinned``), each with its
    resolver in :mod:`bpft.handles` (which leaves this module out: no circle with api)."""
    from . import handles

    return [
        HandleKind("prog", "id", handles._prog_by_id, 10),
        HandleKind("prog", "tag", handles._prog_by_tag, 20),
        HandleKind("prog", "name", handles._prog_by_name, 30),
        HandleKind("prog", "pinned", handles._prog_pinned, 40),
        HandleKind("map", "id", handles._map_by_id, 10),
        HandleKind("map", "name", handles._map_by_name, 20),
        HandleKind("map", "pinned", handles._map_pinned, 30),
    ]


@hookimpl
def bpft_output_formats() -> list[OutputFormat]:
    return [
        OutputFormat("plain", (), make_plain),
        OutputFormat("json", (), make_json),
        OutputFormat("table", (OptionSpec("", "table", "format:table"),), make_table),
    ]
