"""bpftool's command-line grammar.

* Global options are parsed as GNU ``getopt_long`` does for bpftool: anywhere on
  the line (argv is permuted), short options may be clustered (``-jp``), long
  options may be abbreviated to any unique prefix (``--js``), ``--`` ends them.
* Objects, verbs and keywords match by prefix (``bpft p s`` = ``prog show``),
  in the order of their table: the first match wins, as in bpftool.
* :class:`Args` is the cursor a verb walks its words with; its methods carry
  bpftool's messages (``what is 'x'?``, ``'pin' needs at least 3 arguments``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from .errors import EXIT_EINVAL, BpftError, UsageError
from .records import NamedTuple


def is_prefix(word: str | None, full: str) -> bool:
    """bpftool's is_prefix(): ``word`` is a (possibly empty) prefix of ``full``."""
    return word is not None and full.startswith(word)


def match_word(word: str, choices: Iterable[str]) -> str | None:
    """The first of ``choices`` that ``word`` is a prefix of, or None."""
    for choice in choices:
        if choice.startswith(word):
            return choice
    return None


def strtoul(text: str) -> tuple[int, str]:
    """C ``strtoul(text, &end, 0)``: the value and the unparsed rest.

    Leading white space and a sign are accepted, ``0x`` means hex and a
    leading ``0`` octal; a negative value wraps modulo 2**64 as in C.
    """
    s = text.lstrip(" \t\n\r\f\v")
    neg = False
    if s[:1] in "+-" and s:
        neg = s[0] == "-"
        s = s[1:]
    base = 10
    if s[:2].lower() == "0x" and len(s) > 2 and s[2] in "0123456789abcdefABCDEF":
        base, s = 16, s[2:]
    elif s[:1] == "0":
        base = 8
    digits = "0123456789abcdef"[:base]
    n = 0
    while n < len(s) and s[n].lower() in digits:
        n += 1
    if n == 0:
        return 0, text  # nothing parsed: end points at the start
    value = int(s[:n], base)
    if value > 0xFFFFFFFFFFFFFFFF:
        value = 0xFFFFFFFFFFFFFFFF
    if neg:
        value = (-value) & 0xFFFFFFFFFFFFFFFF
    return value, s[n:]


def parse_uint(text: str, what: str, bits: int = 32) -> int:
    """Parse a number as bpftool does (``strtoul`` then a check for trailing junk).

    The result is truncated to ``bits`` as C's assignment to an unsigned
    type would. Raises ``can't parse TEXT as WHAT``.
    """
    value, rest = strtoul(text)
    if rest:
        raise BpftError(f"can't parse {text} as {what}")
    return value & ((1 << bits) - 1)


class Args:
    """The words left after the verb, with bpftool's argument macros."""

    def __init__(self, words: Sequence[str], verb: str = ""):
        self.words = list(words)
        self.pos = 0
        self.verb = verb  # the word before the arguments, for REQ_ARGS messages

    def __len__(self) -> int:
        return len(self.words) - self.pos

    def __bool__(self) -> bool:
        return self.pos < len(self.words)

    def peek(self, offset: int = 0) -> str | None:
        i = self.pos + offset
        return self.words[i] if 0 <= i < len(self.words) else None

    @property
    def current(self) -> str | None:
        return self.peek()

    def next(self) -> str:
        """Take the current word (NEXT_ARG): running out means bpftool's usage()."""
        if self.pos >= len(self.words):
            raise UsageError()
        word = self.words[self.pos]
        self.pos += 1
        return word

    def skip(self) -> None:
        """NEXT_ARG() after a keyword: advance, with usage() if nothing was there."""
        self.next()

    def value(self) -> str:
        """The word after a keyword: NEXT_ARG(), then the value, usage() if missing."""
        return self.next()

    def require(self, count: int, exit_code: int = EXIT_EINVAL) -> None:
        """REQ_ARGS(count): ``'WORD' needs at least N arguments, M found``, WORD being the
        word before the remaining ones (bpftool's ``argv[-1]``: the verb, or the keyword
        just read). bpftool's callers return -EINVAL after it, or -1 (``exit_code``
        EXIT_FAILURE)."""
        if len(self) < count:
            word = self.peek(-1) if self.pos > 0 else self.verb
            raise BpftError(f"'{word}' needs at least {count} arguments, {len(self)} found", exit_code)

    def bad(self) -> BpftError:
        """BAD_ARG(): ``what is 'WORD'?`` for the current word."""
        return BpftError(f"what is '{self.current}'?")

    def rest(self) -> list[str]:
        return self.words[self.pos :]


# --- global options -------------------------------------------------------------


class OptionSpec(NamedTuple):
    """A global option: its short letter (or ''), long name, where its value goes, whether it
    takes a value (``--name VALUE``), and a line of help for ``bpft help``."""

    short: str
    long: str
    dest: str
    takes_value: bool = False
    help: str = ""


class OptionError(BpftError):
    """An option getopt rejects; the message is bpftool's ``unrecognized option 'X'``."""


def getopt(argv: Sequence[str], specs: Sequence[OptionSpec]) -> Iterator[tuple[str | None, str | None]]:
    """GNU getopt_long with permutation and opterr=0, as bpftool's main() calls it.

    Yields ``(dest, value)`` for each option in order of appearance and
    ``(None, word)`` for each positional word; raises :class:`OptionError` at
    the first option it rejects. Callers act on options as they come, as
    bpftool does (``-h`` acts at once, so ``-h -x`` prints help while ``-x -h``
    fails; ``-j -x`` reports the error in JSON, ``-x -j`` in text).
    """
    by_short = {s.short: s for s in specs if s.short}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            for word in argv[i:]:
                yield None, word
            return
        if arg.startswith("--"):
            name, eq, val = arg[2:].partition("=")
            exact = [s for s in specs if s.long == name]
            cands = exact or [s for s in specs if s.long.startswith(name)]
            if len(cands) != 1:
                raise OptionError(f"unrecognized option '{arg}'")
            spec = cands[0]
            if spec.takes_value:
                if not eq:
                    if i >= len(argv):
                        raise OptionError(f"unrecognized option '{arg}'")
                    val = argv[i]
                    i += 1
                yield spec.dest, val
            elif eq:
                raise OptionError(f"unrecognized option '{arg}'")
            else:
                yield spec.dest, None
            continue
        if arg.startswith("-") and arg != "-":
            j = 1
            while j < len(arg):
                letter = by_short.get(arg[j])
                if letter is None:
                    raise OptionError(f"unrecognized option '{arg}'")
                j += 1
                if letter.takes_value:
                    if j < len(arg):
                        val = arg[j:]
                    elif i < len(argv):
                        val = argv[i]
                        i += 1
                    else:
                        raise OptionError(f"unrecognized option '{arg}'")
                    yield letter.dest, val
                    break
                yield letter.dest, None
            continue
        yield None, arg
