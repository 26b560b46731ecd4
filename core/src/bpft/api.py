"""What plugins hand to the core, and what the core hands to verbs.

A plugin returns :class:`Command`, :class:`HandleKind`, :class:`OutputFormat`
and :class:`HelpLine` objects from its hooks (see ``bpft.hookspecs``). A verb's
handler is called as ``handler(ctx, args)`` with a :class:`Context` and a
``bpft.grammar.Args`` cursor over the words after the verb; it returns an exit
status (None means 0) or raises ``bpft.errors.BpftError``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from .grammar import Args, OptionSpec
    from .output import Emitter


class Command(NamedTuple):
    """A verb of an object, e.g. ``prog dump``.

    ``handler`` is ``"module:function"`` (imported only when the verb runs, so
    registering a verb costs nothing) or a callable. ``rank`` orders prefix
    matching: bpftool's table order (show 10, list 20, help 30, dump 40, pin 50,
    load 60, loadall 70, attach 80, detach 90, tracelog 100, run 110,
    profile 120); third-party verbs use 1000 and up. ``usage`` lines are
    printed in ``usage_rank`` order in the object's help, with ``{bin}`` and
    ``{obj}`` replaced by the program name and the object word as typed.
    """

    object: str
    verb: str
    handler: str | Callable[..., Any]
    rank: int = 1000
    usage: tuple[str, ...] = ()
    usage_rank: int = 1000
    summary: str = ""
    distribution: str = ""

    def resolve(self) -> Callable[..., Any]:
        if callable(self.handler):
            return self.handler
        module, _, func = self.handler.partition(":")
        return getattr(importlib.import_module(module), func)


class HelpLine(NamedTuple):
    """A grammar line of an object's help (``TYPE := {...}``), in ``rank`` order.

    Core's: MAP 10, PROG 20, OPTIONS 1000. bpft-load: TYPE 30, ATTACH_TYPE 40.
    bpft-profile: METRIC 50.
    """

    object: str
    text: str
    rank: int = 500


class HandleKind(NamedTuple):
    """A way to name programs: ``id ID``, ``pinned FILE``, ``tag TAG``, ``name NAME``.

    ``resolve(ctx, value)`` returns a list of open program fds (empty if
    nothing matches; bpftool then fails silently) or raises BpftError.
    ``rank`` orders prefix matching of the keyword (id 10, tag 20, name 30,
    pinned 40, as bpftool tries them).
    """

    object: str
    keyword: str
    resolve: Callable[[Context, str], list[int]]
    rank: int = 1000


class OutputFormat(NamedTuple):
    """An output format selected by global options.

    ``options`` are getopt specs whose ``dest`` is ``format:<name>``;
    ``make(ctx)`` builds the Emitter. ``json`` and ``plain`` are core's;
    ``table`` (``--table``) is core's too.
    """

    name: str
    options: tuple[OptionSpec, ...]
    make: Callable[[Options], Emitter]


class Options:
    """Global options as parsed (bpftool's globals)."""

    __slots__ = (
        "json",
        "pretty",
        "debug",
        "bpffs",
        "mapcompat",
        "nomount",
        "use_loader",
        "legacy",
        "base_btf",
        "format",
    )

    def __init__(self, **values: Any):
        self.json = self.pretty = self.debug = self.bpffs = self.mapcompat = False
        self.nomount = self.use_loader = self.legacy = False
        self.base_btf: str | None = None
        self.format = "plain"
        for key, value in values.items():
            setattr(self, key, value)


class Context:
    """Everything a verb needs besides its words."""

    def __init__(
        self,
        options: Options,
        emitter: Emitter,
        plugins: Any,  # bpft.plugins.Registry
        bin_name: str = "bpft",
        object_word: str = "prog",
        verb_word: str = "",
    ):
        self.options = options
        self.emitter = emitter
        self.plugins = plugins
        self.bin_name = bin_name
        self.object_word = object_word
        self.verb_word = verb_word
        self.extra: dict[str, Any] = {}

    @property
    def json(self) -> bool:
        return self.emitter.is_json

    def info(self, message: str) -> None:
        """bpftool's p_info(): a note on stderr, silent in JSON mode."""
        if not self.json:
            sys.stdout.flush()
            sys.stderr.write(message + "\n")

    def debug(self, message: str) -> None:
        """A line for -d/--debug only (libbpf-style debug output)."""
        if self.options.debug:
            sys.stdout.flush()
            sys.stderr.write(message + "\n")

    def prog_fds(self, args: Args) -> list[int]:
        """Resolve a PROG handle at the cursor to fds (bpftool's prog_parse_fds)."""
        from .handles import parse_fds

        return parse_fds(self, args, "prog")

    def prog_fd(self, args: Args) -> int:
        """Resolve a PROG handle that must name exactly one program."""
        from .handles import parse_fd

        return parse_fd(self, args, "prog")

    def map_fd(self, args: Args) -> int:
        """Resolve a MAP handle (id / pinned / name) that must name one map."""
        from .handles import parse_fd

        return parse_fd(self, args, "map")
