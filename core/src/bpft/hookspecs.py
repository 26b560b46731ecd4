"""The plugin contract: every hook bpft calls, documented here and nowhere else.

A plugin is a module (or object) with functions named after these hooks and
marked with ``@hookimpl``, registered under the entry-point group
``bpft.plugins``::

    [project.entry-points."bpft.plugins"]
    myverb = "bpft_myverb.plugin"

All hooks are collected from every plugin (none is ``firstresult``): each
returns a list, and the core merges the lists in the documented order. Hooks
must be cheap: they run on every start-up, so a plugin's hook module imports
nothing heavy; handlers are referenced as ``"module:function"`` strings and
imported only when their verb runs.

The core's own features (the ``help`` verb, the id/tag/name/pinned handles,
the plain/JSON/table writers) are implemented as an ordinary plugin of this
contract: ``bpft.builtin``.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("bpft")
hookimpl = pluggy.HookimplMarker("bpft")


@hookspec
def bpft_commands():
    """Return the verbs this plugin adds, as a list of ``bpft.api.Command``.

    Called once at start-up. Verbs are matched by prefix in ascending
    ``Command.rank`` across all plugins; the object help lists each verb's
    ``usage`` lines in ``usage_rank`` order. A verb the plugin does not
    provide is simply absent.
    """


@hookspec
def bpft_help_lines():
    """Return grammar lines for object help (``TYPE := { ... }``), a list of ``bpft.api.HelpLine``.

    Printed after the usage lines and a blank line, in ascending ``rank``.
    """


@hookspec
def bpft_handle_kinds():
    """Return the handle keywords this plugin resolves, a list of ``bpft.api.HandleKind``.

    ``prog`` handles are tried in ascending ``rank`` by prefix of the keyword;
    the core provides ``id``, ``tag``, ``name`` and ``pinned`` (and for maps
    ``id``, ``name``, ``pinned``). A resolver returns open fds (the caller
    closes them) and may raise ``bpft.errors.BpftError``.
    """


@hookspec
def bpft_output_formats():
    """Return output formats, a list of ``bpft.api.OutputFormat``.

    Each format declares the global options that select it (getopt specs with
    ``dest="format:<name>"``) and a factory for its ``bpft.output.Emitter``.
    ``-j``/``--json`` always selects JSON; otherwise the last format option
    given wins, and ``plain`` is the default.
    """
