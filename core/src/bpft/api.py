"""What plugins hand to the core, and what the core hands to verbs.

A plugin returns :class:`Command`, :class:`HandleKind`, :class:`OutputFormat`,
:class:`HelpLine` and :class:`~bpft.grammar.OptionSpec` objects from its hooks (see
``bpft.hookspecs``). A verb's handler is called as ``handler(ctx, args)`` with a
:class:`Context` and a ``bpft.grammar.Args`` cursor over the words after the verb; it
returns an exit status (None means 0) or raises ``bpft.errors.BpftError``. A verb may
instead be a typer app or a typed function (see ``bpft.typerverb``).

This module is on every start-up path: it imports nothing (``typing`` included, see
``bpft.records``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from .records import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from typing import Any

    from .grammar import Args, OptionSpec
    from .output import Emitter


class Command(NamedTuple):
    """A verb of an object, e.g. ``prog dump``.

    ``handler`` is ``"module:attribute"`` (imported only when the verb runs, so
    registering a verb costs nothing) or a callable. The attribute is either a bpft
    handler ``handler(ctx, args)`` or, for a verb with a conventional command line, a
    ``typer.Typer`` app or a typed function that typer parses the words for (see
    ``bpft.typerverb``; typer is imported only when such a verb runs).

    ``usage`` lines are printed in the object's help, with ``{bin}`` and ``{obj}``
    replaced by the program name and the object word as typed. ``position`` places
    them: ``"after load"`` or ``"before run"`` (the verb named must be installed;
    otherwise, and by default, they come last, before ``help``).

    ``distribution`` is filled in from the entry point's distribution when left
    empty. ``rank`` and ``usage_rank`` are bpft's own distributions' places in
    bpftool's tables (``rank`` orders prefix matching: show 10, list 20, help 30,
    dump 40, pin 50, load 60, loadall 70, attach 80, detach 90, tracelog 100,
    run 110, profile 120); third parties leave them alone, so their verbs match
    after bpftool's.
    """

    object: str
    verb: str
    handler: str | Callable[..., Any]
    rank: int = 1000
    usage: tuple[str, ...] = ()
    usage_rank: int = 1000
    summary: str = ""
    distribution: str = ""
    position: str = ""

    def resolve(self) -> Callable[..., Any]:
        """The handler object, imported now if it is a ``"module:attribute"`` reference."""
        if callable(self.handler):
            return self.handler
        from .plugincache import load_reference

        return load_reference(self.handler)  # type: ignore[no-any-return]


class HelpLine(NamedTuple):
    """A grammar line of an object's help (``TYPE := {...}``), in ``rank`` order.

    Core's: MAP 10, PROG 20, OPTIONS 1000. bpft-load: TYPE 30, ATTACH_TYPE 40.
    bpft-profile: METRIC 50. Shell completion offers the words of a ``NAME := { a | b }``
    line wherever a usage line has ``NAME``.
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
    ``make(options)`` builds the Emitter. ``json`` and ``plain`` are core's;
    ``table`` (``--table``) is core's too.
    """

    name: str
    options: tuple[OptionSpec, ...]
    make: Callable[[Options], Emitter]


class Options:
    """Global options as parsed: bpftool's, and those plugins add (:meth:`get`)."""

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
        "extra",
        "detail",
    )

    def __init__(self, **values: Any):
        self.json = self.pretty = self.debug = self.bpffs = self.mapcompat = False
        self.nomount = self.use_loader = self.legacy = False
        self.detail = False  # --detail: every info field and attachment (bpft's addition)
        self.base_btf: str | None = None
        self.format = "plain"
        self.extra: dict[str, str | bool] = {}  # plugins' options (bpft_global_options), by dest
        for key, value in values.items():
            setattr(self, key, value)

    def get(self, dest: str, default: Any = None) -> Any:
        """The value of a global option by its ``dest``: a plugin's (``True`` for a flag that
        was given, the text for one with a value) or one of bpftool's; ``default`` if unset."""
        if dest in self.extra:
            return self.extra[dest]
        if dest in self.__slots__ and dest != "extra":
            return getattr(self, dest)
        return default


_current: list[Context] = []  # the contexts of the verbs running now, innermost last


class Context:
    """Everything a verb needs besides its words: the options, the output, the plugins."""

    def __init__(
        self,
        options: Options,
        emitter: Emitter,
        plugins: Any,  # a bpft.plugins.Registry (not imported here: it imports this module)
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

    @staticmethod
    def current() -> Context:
        """The context of the verb running now (for typer verbs, which get no ``ctx``).

        Raises ``RuntimeError`` outside a verb.
        """
        if not _current:
            raise RuntimeError("no bpft verb is running")
        return _current[-1]

    def activate(self) -> Context:
        """Make this the :meth:`current` context until :meth:`deactivate` (the CLI does both)."""
        _current.append(self)
        return self

    def deactivate(self) -> None:
        if self in _current:
            _current.remove(self)

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

    def handle_fds(self, args: Args, obj: str) -> list[int]:
        """Resolve the ``obj`` (``"prog"``, ``"map"``) handle at the cursor to open fds
        (possibly none), through the handle kinds the plugins register."""
        from .errors import BpftError, UsageError

        word = args.current
        if word is None:
            raise UsageError()
        kinds = self.plugins.handle_kinds(obj)
        for kind in kinds:
            if kind.keyword.startswith(word):
                args.next()
                value = args.next()
                fds: list[int] = kind.resolve(self, value)
                return fds
        names = [f"'{k.keyword}'" for k in kinds]
        listed = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)
        raise BpftError(f"expected {listed}, got: '{word}'?")

    def handle_fd(self, args: Args, obj: str) -> int:
        """Resolve a handle that must name exactly one object."""
        import os

        from .errors import BpftError, SilentFailure

        fds = self.handle_fds(args, obj)
        if len(fds) == 1:
            return fds[0]
        for fd in fds:
            os.close(fd)
        if len(fds) > 1:
            raise BpftError(f"several {'programs' if obj == 'prog' else 'maps'} match this handle")
        raise SilentFailure()

    def prog_fds(self, args: Args) -> list[int]:
        """Resolve a PROG handle at the cursor to fds (bpftool's prog_parse_fds)."""
        return self.handle_fds(args, "prog")

    def prog_fd(self, args: Args) -> int:
        """Resolve a PROG handle that must name exactly one program."""
        return self.handle_fd(args, "prog")

    def map_fd(self, args: Args) -> int:
        """Resolve a MAP handle (id / pinned / name) that must name one map."""
        return self.handle_fd(args, "map")
