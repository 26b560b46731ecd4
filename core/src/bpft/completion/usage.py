"""What may come next on a bpft command line, read from the installed verbs' usage lines.

A usage line such as ``{bin} {obj} run PROG data_in FILE [repeat N]`` is read as a
sequence of tokens: *keywords* (``data_in``, ``repeat``, ``--type``), and *placeholders*
in capitals (``PROG``, ``FILE``, ``METRICs``: a trailing ``s`` means it repeats), each
marked optional when inside ``[...]`` and with the ``{ a | b }`` group it belongs to.
The words typed so far are walked along the tokens; the candidates for the word being
typed are the tokens that may come next, each placeholder expanded (:func:`expand`).
"""

from __future__ import annotations

from ..grammar import is_prefix
from ..records import TYPE_CHECKING, NamedTuple
from .live import map_ids, pinned_paths, prog_ids, prog_names, prog_tags

if TYPE_CHECKING:
    from ..plugins import Registry

#: Placeholders completed with file names by the shell.
FILE_PLACEHOLDERS = ("FILE", "OBJ", "PATH", "MAP_DIR", "DIR")
#: Placeholders naming an object by a handle: ``KEYWORD VALUE``.
HANDLE_PLACEHOLDERS = {"PROG": "prog", "MAP": "map"}
#: Live values after a handle keyword, by object and keyword.
LIVE = {
    ("prog", "id"): prog_ids,
    ("prog", "name"): prog_names,
    ("prog", "tag"): prog_tags,
    ("prog", "pinned"): pinned_paths,
    ("map", "id"): map_ids,
    ("map", "pinned"): pinned_paths,
}
TOP_WORDS = ("help", "version", "completion")


class Token(NamedTuple):
    text: str
    optional: bool  # inside [...]
    group: int  # the { a | b } group it is an alternative of, 0 for none

    @property
    def placeholder(self) -> str | None:
        """``PROG`` for ``PROG``, ``METRIC`` for ``METRICs``, None for a keyword."""
        name = self.text[:-1] if self.text.endswith("s") and self.text[:-1].isupper() else self.text
        return name if name.isupper() else None

    @property
    def repeats(self) -> bool:
        return self.text.endswith("s") and self.placeholder is not None


def tokens(usage: str) -> list[Token]:
    """The tokens of a usage line's arguments (after ``{bin} {obj}``)."""
    text = usage.replace("{bin}", "").replace("{obj}", "").replace("\\", " ")
    for ch in "[]|":
        text = text.replace(ch, f" {ch} ")
    text = text.replace("{", " { ").replace("}", " } ")
    out: list[Token] = []
    stack: list[str] = []
    groups: list[int] = []
    next_group = 1
    for word in text.split():
        if word in "[{":
            stack.append(word)
            if word == "{":
                groups.append(next_group)
                next_group += 1
        elif word in "]}":
            if stack and stack.pop() == "{" and groups:
                groups.pop()
        elif word != "|":
            out.append(Token(word, "[" in stack, groups[-1] if groups else 0))
    return out


def help_words(registry: Registry, obj: str) -> dict[str, list[str]]:
    """``NAME -> [words]`` from the object's ``NAME := { a | b | ... }`` help lines."""
    out: dict[str, list[str]] = {}
    for line in registry.help_lines(obj):
        name, sep, body = line.text.partition(":=")
        if sep and name.strip().isupper():
            words = [alt.split()[0] for alt in _alternatives(body) if alt.split()]
            # keywords only: not placeholders (PATH) nor words with one inside (cgroup_ATTACH)
            out[name.strip()] = list(dict.fromkeys(w for w in words if w.islower()))
    return out


def _alternatives(body: str) -> list[str]:
    """The alternatives of ``{ a x | b [y] | c }``: split at the ``|`` of the outer group
    (``xdp dev IFACE [{ skb | drv }]`` is one alternative)."""
    body = body.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    alts, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        elif ch == "|" and depth == 0:
            alts.append(body[start:i])
            start = i + 1
    alts.append(body[start:])
    return alts


def expand(registry: Registry, obj: str, token: Token, prefix: str) -> tuple[str, list[str]]:
    """The candidates a token stands for: (kind, words)."""
    name = token.placeholder
    if name is None:
        return "words", [token.text]
    if name in HANDLE_PLACEHOLDERS:
        return "words", [k.keyword for k in registry.handle_kinds(HANDLE_PLACEHOLDERS[name])]
    if name in FILE_PLACEHOLDERS:
        return "files", []
    return "words", help_words(registry, obj).get(name, [])


def _verb_lines(registry: Registry, obj: str, verb: str) -> list[list[Token]]:
    """The argument tokens of each usage line of ``verb`` (``{ load | loadall } OBJ ...``)."""
    lines = []
    for cmd in registry.commands(obj):
        for usage in cmd.usage:
            toks = tokens(usage)
            if not toks:
                continue
            head = [t for t in toks if t.group == toks[0].group] if toks[0].group else toks[:1]
            if verb in (t.text for t in head):
                lines.append(toks[len(head) :])
    return lines


def _walk(line: list[Token], words: list[str]) -> tuple[int, str | None] | None:
    """Walk typed ``words`` along a line: (next token index, the placeholder whose value
    is due, or ``"PROG:keyword"`` for a handle's); None when a word contradicts the line."""
    pos, due = 0, None
    for word in words:
        if due is not None:  # this word is the value of the previous keyword
            due = None
            continue
        at = next(
            (i for i in range(pos, len(line)) if line[i].placeholder is None and is_prefix(word, line[i].text)), None
        )
        if at is not None:
            pos = at + 1
            value = line[pos] if pos < len(line) else None
            if value and value.placeholder not in (None, *HANDLE_PLACEHOLDERS) and value.group == line[at].group:
                due, pos = value.text, pos + 1  # "file FILE": the value comes next
            continue
        if pos < len(line) and line[pos].placeholder:
            token = line[pos]
            if token.placeholder in HANDLE_PLACEHOLDERS:
                due = f"{token.placeholder}:{word}"  # the handle's value comes next
            if not token.repeats:
                pos += 1
            continue
        if pos < len(line) and not line[pos].optional:
            return None
    return pos, due


def _next_tokens(line: list[Token], pos: int) -> list[Token]:
    """The tokens that may come at ``pos``: optional ones up to the first required one
    (with its group's alternatives), and a repeating placeholder just passed. An
    optional placeholder after a keyword (``[type TYPE]``) is that keyword's value: it
    comes only after the keyword, so it is left out here."""
    out = [line[pos - 1]] if pos and line[pos - 1].repeats else []
    required_group = None
    for i in range(pos, len(line)):
        token = line[i]
        if required_group is not None and token.group != required_group:
            break
        is_value = (
            token.optional
            and token.placeholder
            and i > pos
            and (line[i - 1].placeholder is None or line[i - 1].optional)
        )
        if not is_value:
            out.append(token)
        if not token.optional:
            if not token.group:
                break
            required_group = token.group
    return out


def _options(registry: Registry, prefix: str) -> list[str]:
    from ..globalopts import option_specs

    return [f"--{s.long}" for s in option_specs(registry) if f"--{s.long}".startswith(prefix)]


def complete(registry: Registry, words: list[str]) -> tuple[str, list[str]]:
    """(kind, candidates) for the last of ``words`` (the words after ``bpft``)."""
    from ..globalopts import option_specs

    cur = words[-1] if words else ""
    if cur.startswith("-"):
        return "words", _options(registry, cur)
    takes_value = {f"--{s.long}" for s in option_specs(registry) if s.takes_value}
    takes_value |= {f"-{s.short}" for s in option_specs(registry) if s.takes_value and s.short}
    typed: list[str] = []
    skip = False
    for word in words[:-1]:
        if skip:
            skip = False
        elif word.startswith("-") and word != "-":
            skip = word in takes_value
        else:
            typed.append(word)
    objects = registry.objects()
    if not typed:
        return "words", [w for w in ("help", *objects, *TOP_WORDS[1:]) if w.startswith(cur)]
    top = next((w for w in ("help", *objects, *TOP_WORDS[1:]) if is_prefix(typed[0], w)), None)
    if top == "completion":
        return "words", [s for s in ("bash", "zsh", "fish") if s.startswith(cur)] if len(typed) == 1 else []
    if top not in objects:
        return "words", []
    obj = top
    if len(typed) == 1:
        return "words", [c.verb for c in registry.commands(obj) if c.verb.startswith(cur)]
    cmd = next((c for c in registry.commands(obj) if is_prefix(typed[1], c.verb)), None)
    if cmd is None:
        return "words", []
    kind, out = "words", []
    for line in _verb_lines(registry, obj, cmd.verb):
        walked = _walk(line, typed[2:])
        if walked is None:
            continue
        pos, due = walked
        if due is not None:
            handle_obj, _, keyword = due.partition(":")
            if keyword:  # the value of a handle keyword: live values
                full = next(
                    (
                        k.keyword
                        for k in registry.handle_kinds(HANDLE_PLACEHOLDERS[handle_obj])
                        if is_prefix(keyword, k.keyword)
                    ),
                    "",
                )
                value_of = LIVE.get((HANDLE_PLACEHOLDERS[handle_obj], full))
                found = value_of(cur) if value_of else []
                kind = "paths" if full == "pinned" else kind
            else:
                kind, found = expand(registry, obj, Token(due, False, 0), cur)
            out.extend(found)
            continue
        for token in _next_tokens(line, pos):
            token_kind, found = expand(registry, obj, token, cur)
            if token_kind != "words":
                kind = token_kind
            out.extend(found)
    seen = dict.fromkeys(w for w in out if w.startswith(cur))
    return kind, list(seen)
