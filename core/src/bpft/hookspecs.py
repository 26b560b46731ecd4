"""The plugin contract: every hook bpft calls, documented here and nowhere else.

A plugin is a module (or object) with functions named after these hooks and
marked with ``@bpft.hookimpl``, registered under the entry-point group
``bpft.plugins``::

    [project.entry-points."bpft.plugins"]
    myverb = "bpft_myverb.plugin"

All hooks take no arguments and return a list; the core collects the lists of every
plugin (none is ``firstresult``, and wrappers are not called) and merges them in the
documented order.

Hooks describe, they do not act: bpft asks them once per installed set and keeps the
answers (``bpft.plugincache``), so a run with the same plugins installed imports none
of their hook modules. A hook must therefore return the same answer every time: no
answers that depend on the environment, the kernel or the time. Callables in an
answer should be module-level functions (kept by name); a lambda or a bound method
makes bpft ask that plugin's hooks on every run, which is slower. A hook module
imports nothing heavy: handlers are ``"module:function"`` references, imported only
when their verb runs.

The core's own features (the ``help`` verb, the id/tag/name/pinned handles,
the plain/JSON/table writers) are implemented as an ordinary plugin of this
contract: ``bpft.builtin``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .api import Command, HandleKind, HelpLine, OutputFormat
    from .grammar import OptionSpec

hookspec = pluggy.HookspecMarker("bpft")
hookimpl = pluggy.HookimplMarker("bpft")


@hookspec
def bpft_commands() -> list[Command]:
    """Return the verbs this plugin adds, as a list of ``bpft.Command``.

    Verbs are matched by prefix in ascending ``Command.rank`` across all plugins
    (third parties leave it at its default: after bpftool's verbs). The object help
    lists each verb's ``usage`` lines, placed by ``Command.position`` (``"after
    load"``). A handler is a bpft handler ``handler(ctx, args)``, or a ``typer.Typer``
    app or typed function that typer parses the verb's words for.
    """
    raise NotImplementedError


@hookspec
def bpft_help_lines() -> list[HelpLine]:
    """Return grammar lines for object help (``TYPE := { ... }``), a list of ``bpft.HelpLine``.

    Printed after the usage lines and a blank line, in ascending ``rank``. Shell
    completion offers the words of ``NAME := { a | b }`` where a usage line says ``NAME``.
    """
    raise NotImplementedError


@hookspec
def bpft_handle_kinds() -> list[HandleKind]:
    """Return the handle keywords this plugin resolves, a list of ``bpft.HandleKind``.

    ``prog`` handles are tried in ascending ``rank`` by prefix of the keyword;
    the core provides ``id``, ``tag``, ``name`` and ``pinned`` (and for maps
    ``id``, ``name``, ``pinned``). A resolver returns open fds (the caller
    closes them) and may raise ``bpft.BpftError``.
    """
    raise NotImplementedError


@hookspec
def bpft_output_formats() -> list[OutputFormat]:
    """Return output formats, a list of ``bpft.OutputFormat``.

    Each format declares the global options that select it (getopt specs with
    ``dest="format:<name>"``) and a factory for its ``bpft.output.Emitter``.
    ``-j``/``--json`` always selects JSON; otherwise the last format option
    given wins, and ``plain`` is the default.
    """
    raise NotImplementedError


@hookspec
def bpft_global_options() -> list[OptionSpec]:
    """Return global options every verb sees, a list of ``bpft.OptionSpec``.

    They are parsed as bpftool's options are (anywhere on the line, long names by
    unique prefix, short letters clustered) and land in ``ctx.options.get(dest)``:
    ``True`` for a flag that was given, the text for ``takes_value=True``, absent
    otherwise. An option whose long name or letter the core (or an earlier plugin)
    already uses is ignored. ``bpft prog help`` lists them as ``PLUGIN_OPTIONS``.
    """
    raise NotImplementedError
