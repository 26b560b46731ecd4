"""The ``bpft`` command: global options, objects, verb dispatch, help, errors.

The flow is bpftool's main(): getopt over the whole line, then the object
word, then the verb word, each matched by prefix in table order. Verbs come
from plugins; a verb's handler is imported only when it runs.
"""

from __future__ import annotations

import os
import sys

from . import __version__
from .api import Command, Context, Options
from .errors import EXIT_FAILURE, BpftError, UsageError
from .grammar import Args, OptionError, OptionSpec, getopt, is_prefix
from .plugins import KNOWN_VERB_ORDER, KNOWN_VERBS, Registry

BIN_NAME = "bpft"

CORE_OPTIONS = (
    OptionSpec("j", "json", "json"),
    OptionSpec("h", "help", "help"),
    OptionSpec("p", "pretty", "pretty"),
    OptionSpec("V", "version", "version"),
    OptionSpec("f", "bpffs", "bpffs"),
    OptionSpec("m", "mapcompat", "mapcompat"),
    OptionSpec("n", "nomount", "nomount"),
    OptionSpec("d", "debug", "debug"),
    OptionSpec("L", "use-loader", "use_loader"),
    OptionSpec("B", "base-btf", "base_btf", takes_value=True),
    OptionSpec("l", "legacy", "legacy"),
    OptionSpec("", "detail", "detail"),  # bpft's: `prog show --detail`, `link show --detail`
)


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
        [f"{ctx.bin_name} [OPTIONS] OBJECT {{ COMMAND | help }}", f"{ctx.bin_name} version"],
        [
            "OBJECT := { " + " | ".join(objects) + " }",
            "OPTIONS := { {-j|--json} [{-p|--pretty}] | {-d|--debug} | {-l|--legacy} |\n"
            "                    {-V|--version} }",
        ],
    )


def object_help(ctx: Context, obj: str) -> str:
    cmds = sorted((c for c in ctx.plugins.commands(obj) if c.usage), key=lambda c: c.usage_rank)
    usage = [u.replace("{bin}", ctx.bin_name).replace("{obj}", ctx.object_word) for c in cmds for u in c.usage]
    specs = [h.text for h in ctx.plugins.help_lines(obj)]
    extra = [o for f in ctx.plugins.output_formats() for o in f.options]
    if extra:
        specs.append("FORMAT := { " + " | ".join(f"--{o.long}" for o in extra) + " }")
    return _usage_block("Usage: ", usage, specs)


def prog_help(ctx: Context, args: Args) -> int:
    """``bpft prog help``: the usage of every installed verb (stderr; ``null`` with -j)."""
    ctx.emitter.help(object_help(ctx, "prog"))
    return 0


def _version(ctx: Context) -> int:
    plugins = sorted(name for name, _ in ctx.plugins.distributions() if name != "core" and not name.isdigit())
    if ctx.json:
        from .output import Record

        ctx.emitter.record(Record({"version": __version__, "plugins": plugins, "features": {"libbpf": False}}))
    else:
        ctx.emitter.text(f"{ctx.bin_name} v{__version__}\nusing no libbpf\nplugins: {', '.join(plugins)}\n")
    return 0


def _missing_verb(word: str) -> BpftError | None:
    for verb in KNOWN_VERB_ORDER:
        if is_prefix(word, verb) and verb in KNOWN_VERBS:
            dist = KNOWN_VERBS[verb]
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
        missing = _missing_verb(word)
        if missing:
            raise missing
    ctx.emitter.help(object_help(ctx, obj))
    return EXIT_FAILURE


def _call(ctx: Context, cmd: Command, rest: list[str], word: str) -> int:
    ctx.verb_word = word
    rc = cmd.resolve()(ctx, Args(rest, verb=word))
    return 0 if rc is None else rc


def _dispatch(ctx: Context, words: list[str]) -> int:
    ctx.extra["help"] = lambda: top_help(ctx)
    if not words:
        ctx.emitter.help(top_help(ctx))
        return 0
    word = words[0]
    table = ["help", *ctx.plugins.objects(), "version"]
    for name in table:
        if is_prefix(word, name):
            if name == "help":
                ctx.emitter.help(top_help(ctx))
                return 0
            if name == "version":
                return _version(ctx)
            ctx.object_word = word
            return _run_object(ctx, name, words[1:])
    ctx.emitter.help(top_help(ctx))
    return EXIT_FAILURE


def _select_format(registry: Registry, options: Options, chosen: str | None):
    formats = {f.name: f for f in registry.output_formats()}
    name = "json" if options.json else (chosen or "plain")
    options.format = name
    return formats[name].make(options)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    registry = Registry()
    options = Options()
    specs = list(CORE_OPTIONS) + [o for f in registry.output_formats() for o in f.options]
    words: list[str] = []
    chosen_format = None
    want_version = False
    ctx = Context(options, _select_format(registry, options, None), registry, BIN_NAME)
    try:
        for dest, value in getopt(argv, specs):
            if dest is None:
                words.append(value)  # type: ignore[arg-type]
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
