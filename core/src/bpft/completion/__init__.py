"""Shell completion: ``bpft completion { bash | zsh | fish }`` prints a script to source.

The scripts ask bpft itself what may come next (``bpft completion query -- WORDS``,
the words after ``bpft`` up to the one being typed). bpft answers from what is
installed: the objects, each verb's usage lines and the help lines' ``NAME := { ... }``
words (``bpft.completion.usage``), and live values from the kernel and bpffs after
``id``/``name``/``tag``/``pinned`` (``bpft.completion.live``). The answer's first line
says what the shell should do (:data:`KINDS`), the others are the candidates.
"""

from __future__ import annotations

from ..records import TYPE_CHECKING

if TYPE_CHECKING:
    from ..api import Context
    from ..grammar import Args

SHELLS = ("bash", "zsh", "fish")

#: What the first line of an answer tells the script: ``words`` (offer the candidates),
#: ``files`` (complete file names as the shell does), ``paths`` (the candidates are
#: paths: no space after a directory).
KINDS = ("words", "files", "paths")


def run(ctx: Context, args: Args) -> int:
    """``bpft completion SHELL`` prints the script; ``bpft completion query -- WORDS``
    prints the answer for the last word."""
    from ..errors import UsageError

    if not args:
        raise UsageError()
    word = args.next()
    if word == "query":
        from .usage import complete

        kind, candidates = complete(ctx.plugins, args.rest())
        ctx.emitter.out.write("".join(f"{line}\n" for line in (kind, *candidates)))
        return 0
    shell = next((s for s in SHELLS if s.startswith(word)), None)
    if shell is None or args:
        raise UsageError(f"no completion for '{word}': choose one of {', '.join(SHELLS)}")
    from .scripts import script

    ctx.emitter.out.write(script(shell, ctx.bin_name))
    return 0
