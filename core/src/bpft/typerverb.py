"""Verbs written with typer: a plugin's conventional command line inside bpft's.

A :class:`~bpft.api.Command` whose handler names a ``typer.Typer`` app, or a typed
function (any function that is not a bpft handler, see :func:`is_bpft_handler`), gets
typer's parsing of the words after the verb, its ``--help`` and its errors. bpft's own
global options keep working around it: before the verb, and after it wherever typer
does not claim the option (:func:`split_words`). The verb finds bpft's context through
``bpft.Context.current()`` (or click's ``ctx.obj``), writes through its emitter, and
raises ``bpft.BpftError`` like any verb.

typer is imported only when such a verb runs: this module imports nothing from it at
the top, and :func:`is_typer_target` looks at a type's module name instead.

Core's own verbs keep bpftool's grammar (``bpft.grammar``), which typer cannot express.
"""

from __future__ import annotations

from collections.abc import Sequence

from .records import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

    from .api import Context
    from .grammar import OptionSpec


def is_bpft_handler(target: Any) -> bool:
    """True for ``handler(ctx, args)``: two positional parameters, unannotated or annotated
    ``Context``/``Args``, and any further parameters optional (``run(ctx, args, kernel=None)``,
    for tests). Any other function is a typed function for typer."""
    code = getattr(target, "__code__", None)
    if code is None:
        return True  # a callable object: bpft's calling convention
    defaults = getattr(target, "__defaults__", None) or ()
    kw_defaults = getattr(target, "__kwdefaults__", None) or {}
    if code.co_argcount < 2 or len(defaults) != code.co_argcount - 2:
        return False
    if len(kw_defaults) != code.co_kwonlyargcount:
        return False
    annotations = getattr(target, "__annotations__", {})
    for param in code.co_varnames[:2]:
        note = annotations.get(param)
        if note is None:
            continue
        text = note.strip("'\"") if isinstance(note, str) else getattr(note, "__name__", "")
        if not text.endswith(("Context", "Args")):
            return False
    return True


def is_typer_target(target: Any) -> bool:
    """A ``typer.Typer`` app, or a function that is not a bpft handler."""
    cls = type(target)
    if cls.__module__.partition(".")[0] == "typer" and cls.__name__ == "Typer":
        return True
    return callable(target) and not is_bpft_handler(target)


def click_command(target: Any) -> Any:
    """The click command typer builds for an app, or for one typed function."""
    import typer
    import typer.main

    if not isinstance(target, typer.Typer):
        app = typer.Typer(add_completion=False)
        app.command()(target)
        target = app
    return typer.main.get_command(target)


def claimed_options(command: Any) -> dict[str, bool]:
    """The option strings the click command (and its subcommands) accept, each with
    whether it takes a value."""
    claimed: dict[str, bool] = {}
    stack = [command]
    while stack:
        cmd = stack.pop()
        for param in getattr(cmd, "params", ()):
            if getattr(param, "param_type_name", "") != "option":
                continue
            takes_value = not (param.is_flag or param.count)
            for opt in (*param.opts, *param.secondary_opts):
                claimed[opt] = takes_value
        stack.extend(getattr(cmd, "commands", {}).values())
    settings = getattr(command, "context_settings", None) or {}
    for name in settings.get("help_option_names") or ["--help"]:
        claimed[name] = False
    return claimed


def _bpft_option(arg: str, specs: Sequence[OptionSpec]) -> OptionSpec | None:
    """The bpft option ``arg`` names (a long one by unique prefix; a cluster of short
    letters by its last), or None."""
    if arg.startswith("--"):
        name = arg[2:].partition("=")[0]
        exact = [s for s in specs if s.long == name]
        found = exact or [s for s in specs if s.long.startswith(name)]
        return found[0] if len(found) == 1 else None
    by_short = {s.short: s for s in specs if s.short}
    letters = arg[1:]
    if not letters or any(ch not in by_short for ch in letters):
        return None
    return by_short[letters[-1]]


def split_words(
    words: Sequence[str], claimed: dict[str, bool], specs: Sequence[OptionSpec]
) -> tuple[list[str], list[str]]:
    """The words after a typer verb, cut into (bpft's global options, typer's words).

    An option typer claims is typer's (with its value); otherwise a word that is one of
    bpft's options is bpft's (with its value); everything else, and all after ``--``,
    is typer's. ``-h`` means the verb's ``--help`` unless typer claims it.
    """
    ours: list[str] = []
    theirs: list[str] = []
    i = 0
    while i < len(words):
        arg = words[i]
        i += 1
        if arg == "--":
            theirs.extend(words[i - 1 :])
            break
        if not arg.startswith("-") or arg == "-":
            theirs.append(arg)
            continue
        name = arg.partition("=")[0]
        if name in claimed:
            theirs.append(arg)
            if claimed[name] and "=" not in arg and i < len(words):
                theirs.append(words[i])
                i += 1
            continue
        if arg == "-h" and "--help" in claimed:
            theirs.append("--help")
            continue
        spec = _bpft_option(arg, specs)
        if spec is None:
            theirs.append(arg)
            continue
        ours.append(arg)
        if spec.takes_value and "=" not in arg and (arg.startswith("--") or arg[-1] == spec.short) and i < len(words):
            ours.append(words[i])
            i += 1
    return ours, theirs


def run(target: Any, ctx: Context, words: list[str], verb: str) -> int:
    """Run a typer verb on ``words``; its exit status (typer's 2 for a usage error)."""
    command = click_command(target)
    prog_name = f"{ctx.bin_name} {ctx.object_word} {verb}"
    try:
        command.main(args=list(words), prog_name=prog_name, standalone_mode=True, obj=ctx)
    except SystemExit as e:
        code = e.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        ctx.emitter.error(str(code))
        return 1
    return 0
