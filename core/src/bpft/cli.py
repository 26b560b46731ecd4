"""The ``bpft`` command: global options, objects, verb dispatch, help, errors.

The flow is bpftool's main(): getopt over the whole line, then the object
word, then the verb word, each matched by prefix in table order. Verbs come
from plugins; a verb's handler is imported only when it runs. A verb written
with typer (``bpft.typerverb``) gets the words after it, less bpft's own options.
Besides the objects, the top level has ``help``, ``version`` (the plugins, and
those that failed to load) and ``completion`` (``bpft.completion``).
"""

from __future__ import annotations

import os
import sys

from . import __version__
from .api import Command, Context, Options
from .errors import EXIT_FAILURE, BpftError, UsageError
from .globalopts import option_specs, plugin_options
from .grammar import Args, OptionError, OptionSpec, getopt, is_prefix
from .plugins import KNOWN_VERB_ORDER, KNOWN_VERBS, Registry
from .records import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

    from .output import Emitter

BIN_NAME = "bpft"

#: The top-level words besides the objects, in bpftool's table order (help first).
TOP_WORDS_BEFORE = ("help",)
TOP_WORDS_AFTER = ("version", "completion")


def _usage_block(first: str, lines: list[str], specs: list[str]) -> str:
    out = []
    for i, text in enumerate(lines):
        out.append((first if i == 0 else "       ") + text)
    if specs:
        out.append("")
        out.extend("       " + s for s in specs)
    return "\n".join(out) + "\n"


def top_help(ctx: Context) -> str:
    objects = ctx.plugins.objects()
    return _usage_block(
        "Usage: ",
        [
            f"{ctx.bin_name} [OPTIONS] OBJECT {{ COMMAND | help }}",
            f"{ctx.bin_name} version",
            f"{ctx.bin_name} completion {{ bash | zsh | fish }}",
        ],
        [
            "OBJECT := { " + " | ".join(objects) + " }",
            "OPTIONS := { {-j|--json} [{-p|--pretty}] | {-d|--debug} | {-l|--legacy} |\n"
            "                    {-V|--version} }",
        ],
    )


def ordered_usage(cmds: list[Command]) -> list[Command]:
    """Verbs with usage lines in help order: ``usage_rank`` (bpft's own distributions, in
    bpftool's order), then each ``position`` ("after load", "before run") applied in
    turn; a position naming an absent verb, or none, means last before ``help``."""
    ranked = sorted((c for c in cmds if c.usage and not c.position), key=lambda c: c.usage_rank)
    tail = [c for c in ranked if c.usage_rank >= 10_000]  # help stays last
    order = [c for c in ranked if c.usage_rank < 10_000]
    for cmd in (c for c in cmds if c.usage and c.position):
        where, _, verb = cmd.position.partition(" ")
        at = next((i for i, c in enumerate(order) if c.verb == verb.strip()), None)
        if at is None or where not in ("after", "before"):
            order.append(cmd)
        else:
            order.insert(at + 1 if where == "after" else at, cmd)
    return order + tail


def object_help(ctx: Context, obj: str) -> str:
    usage = [
        u.replace("{bin}", ctx.bin_name).replace("{obj}", ctx.object_word)
        for c in ordered_usage(ctx.plugins.commands(obj))
        for u in c.usage
    ]
    specs = [h.text for h in ctx.plugins.help_lines(obj)]
    extra = [o for f in ctx.plugins.output_formats() for o in f.options]
    if extra:
        specs.append("FORMAT := { " + " | ".join(f"--{o.long}" for o in extra) + " }")
    added = plugin_options(ctx.plugins)
    if added:
        specs.append("PLUGIN_OPTIONS := { " + " | ".join(_option_usage(o) for o in added) + " }")
    return _usage_block("Usage: ", usage, specs)


def _option_usage(spec: OptionSpec) -> str:
    names = f"{{-{spec.short}|--{spec.long}}}" if spec.short else f"--{spec.long}"
    return f"{names} {spec.dest.upper()}" if spec.takes_value else names


def prog_help(ctx: Context, args: Args) -> int:
    """``bpft prog help``: the usage of every installed verb (stderr; ``null`` with -j)."""
    ctx.emitter.help(object_help(ctx, "prog"))
    return 0


def _version(ctx: Context) -> int:
    """``bpft version``: bpft's version and every plugin with its distribution, failures too."""
    infos = sorted((i for i in ctx.plugins.plugins if i.name != "core"), key=lambda i: i.name)
    if ctx.json:
        from .output import Record

        plugins = []
        for info in infos:
            entry: dict[str, Any] = {"name": info.name, "distribution": info.distribution, "version": info.version}
            if info.error:
                entry["error"] = info.error
            plugins.append(entry)
        ctx.emitter.record(Record({"version": __version__, "plugins": plugins, "features": {"libbpf": False}}))
    else:
        width = max((len(i.name) for i in infos), default=0)
        lines = [f"{ctx.bin_name} v{__version__}", "using no libbpf", "plugins:"]
        for info in infos:
            where = f"{info.distribution} {info.version}".strip()
            line = f"  {info.name.ljust(width)}  {where}"
            lines.append(f"{line}  failed: {info.error}" if info.error else line)
        ctx.emitter.text("\n".join(lines) + "\n")
    if ctx.options.debug:
        for info in infos:
            if info.details:
                sys.stdout.flush()
                sys.stderr.write(f"plugin '{info.name}' ({info.module}):\n{info.details}")
    return 0


def _missing_verb(ctx: Context, word: str) -> BpftError | None:
    for verb in KNOWN_VERB_ORDER:
        if is_prefix(word, verb) and verb in KNOWN_VERBS:
            dist = KNOWN_VERBS[verb]
            for info in ctx.plugins.plugins:
                if info.error and info.distribution == dist:
                    return BpftError(
                        f"'{verb}' is installed but failed to load: {info.error} (see {ctx.bin_name} version)"
                    )
            return BpftError(f"'{verb}' is not installed: it comes with {dist} (pip install {dist})")
    return None


def _run_object(ctx: Context, obj: str, words: list[str]) -> int:
    """bpftool's cmd_select() for one object's verbs."""
    cmds: list[Command] = ctx.plugins.commands(obj)
    ctx.extra["help"] = lambda: object_help(ctx, obj)
    if not words:
        if cmds and cmds[0].rank == 10:  # the object's default verb (prog: show)
            return _call(ctx, cmds[0], words, "")
        ctx.emitter.help(object_help(ctx, obj))
        return 0
    word = words[0]
    for cmd in cmds:
        if is_prefix(word, cmd.verb):
            return _call(ctx, cmd, words[1:], word)
    if obj == "prog":
        missing = _missing_verb(ctx, word)
        if missing:
            raise missing
    ctx.emitter.help(object_help(ctx, obj))
    return EXIT_FAILURE


def _call(ctx: Context, cmd: Command, rest: list[str], word: str) -> int:
    ctx.verb_word = word
    try:
        handler = cmd.resolve()
    except ImportError as e:  # the plugin registered, but its verb's module cannot load
        raise BpftError(
            f"'{cmd.verb}' failed to load: {type(e).__name__}: {e} ({cmd.distribution or 'a plugin'})"
        ) from None
    typer_words = ctx.extra.get("typer_words")
    if typer_words is not None:
        from . import typerverb

        return typerverb.run(handler, ctx, typer_words, cmd.verb)
    rc = handler(ctx, Args(rest, verb=word))
    return 0 if rc is None else int(rc)


def _dispatch(ctx: Context, words: list[str]) -> int:
    ctx.extra["help"] = lambda: top_help(ctx)
    if not words:
        ctx.emitter.help(top_help(ctx))
        return 0
    word = words[0]
    for name in (*TOP_WORDS_BEFORE, *ctx.plugins.objects(), *TOP_WORDS_AFTER):
        if is_prefix(word, name):
            if name == "help":
                ctx.emitter.help(top_help(ctx))
                return 0
            if name == "version":
                return _version(ctx)
            if name == "completion":
                from .completion import run as run_completion

                return run_completion(ctx, Args(words[1:], verb=word))
            ctx.object_word = word
            return _run_object(ctx, name, words[1:])
    ctx.emitter.help(top_help(ctx))
    return EXIT_FAILURE


def _select_format(registry: Registry, options: Options, chosen: str | None) -> Emitter:
    formats = {f.name: f for f in registry.output_formats()}
    name = "json" if options.json else (chosen or "plain")
    options.format = name
    return formats[name].make(options)


def _typer_split(registry: Registry, argv: list[str], specs: list[OptionSpec]) -> tuple[list[str], list[str]] | None:
    """For a typer verb: (bpft's part of the line, up to the verb word; typer's words).

    A look ahead at the object and verb words that acts on nothing; None when the
    verb is bpft's own kind (the line then goes to getopt whole, as bpftool's does).
    """
    takes_value = {f"--{s.long}" for s in specs if s.takes_value} | {f"-{s.short}" for s in specs if s.takes_value}
    positions: list[int] = []
    i = 0
    while i < len(argv) and len(positions) < 2:
        arg = argv[i]
        if arg == "--":
            positions.extend(range(i + 1, min(len(argv), i + 3 - len(positions))))
            break
        if arg.startswith("-") and arg != "-":
            if arg.partition("=")[0] in takes_value and "=" not in arg:
                i += 1
        else:
            positions.append(i)
        i += 1
    if len(positions) < 2:
        return None
    obj_word, verb_word = argv[positions[0]], argv[positions[1]]
    obj = next((o for o in (*TOP_WORDS_BEFORE, *registry.objects(), *TOP_WORDS_AFTER) if is_prefix(obj_word, o)), None)
    if obj is None or obj in TOP_WORDS_BEFORE or obj in TOP_WORDS_AFTER:
        return None
    cmd = next((c for c in registry.commands(obj) if is_prefix(verb_word, c.verb)), None)
    if cmd is None:
        return None
    try:
        target = cmd.resolve()
    except Exception:
        return None  # reported when the verb is called
    from .typerverb import is_typer_target

    if not is_typer_target(target):
        return None
    from . import typerverb

    ours, theirs = typerverb.split_words(
        argv[positions[1] + 1 :], typerverb.claimed_options(typerverb.click_command(target)), specs
    )
    return [*argv[: positions[1] + 1], *ours], theirs


def main(argv: list[str] | None = None, registry: Registry | None = None) -> int:
    """Run one bpft command line; its exit status. ``registry`` defaults to the installed plugins."""
    argv = sys.argv[1:] if argv is None else list(argv)
    registry = Registry() if registry is None else registry
    options = Options()
    specs = option_specs(registry)
    ctx = Context(options, _select_format(registry, options, None), registry, BIN_NAME).activate()
    try:
        return _main(ctx, argv, specs)
    finally:
        ctx.deactivate()


def _main(ctx: Context, argv: list[str], specs: list[OptionSpec]) -> int:
    options, registry = ctx.options, ctx.plugins
    plugin_dests = {s.dest for s in plugin_options(registry)}
    words: list[str] = []
    chosen_format: str | None = None
    want_version = False
    try:
        split = _typer_split(registry, argv, specs)
        if split is not None:
            argv, ctx.extra["typer_words"] = split
        for dest, value in getopt(argv, specs):
            if dest is None:
                words.append(value)  # type: ignore[arg-type]
            elif dest in plugin_dests:
                options.extra[dest] = True if value is None else value
            elif dest == "help":
                ctx.emitter.help(top_help(ctx))
                ctx.emitter.close()
                return 0
            elif dest == "version":
                want_version = True
            elif dest == "base_btf":
                options.base_btf = value
            elif dest.startswith("format:"):
                chosen_format = dest.split(":", 1)[1]
            else:
                if dest == "pretty":
                    options.json = True
                setattr(options, dest, True)
                if dest in ("json", "pretty"):  # nothing is written yet: rebuild the writer
                    ctx.emitter = _select_format(registry, options, chosen_format)
    except OptionError as e:
        ctx.emitter.error(e.message)
        if not ctx.emitter.is_json:
            ctx.emitter.help(top_help(ctx))
        ctx.emitter.close()
        return EXIT_FAILURE

    if chosen_format and not options.json:
        ctx.emitter = _select_format(registry, options, chosen_format)
    rc = EXIT_FAILURE
    try:
        rc = _version(ctx) if want_version else _dispatch(ctx, words)
    except UsageError as e:
        if e.message:
            ctx.emitter.error(e.message)
        ctx.emitter.help(ctx.extra.get("help", lambda: top_help(ctx))())
        rc = e.exit_code
    except BpftError as e:
        if e.message:
            ctx.emitter.error(e.message)
        rc = e.exit_code
    except KeyboardInterrupt:
        rc = 130
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except Exception as e:  # never a traceback for a user; -d shows it
        if options.debug:
            import traceback

            traceback.print_exc()
        ctx.emitter.error(f"internal error: {type(e).__name__}: {e}")
        rc = EXIT_FAILURE
    try:
        ctx.emitter.close()
    except BrokenPipeError:
        _silence_stdout()
    return rc


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
