"""Expressions and text templates, the pieces a field table is written in.

An :class:`Expression` is one Python expression, kept as source, as a parsed
tree (for :mod:`bpft_show.codegen`, which compiles many of them into one
function) and as a code object (for the reference renderers, which evaluate
them one by one in a namespace dict).

A :class:`Template` is the body of an f-string: literal text with
``{expression}`` placeholders. Write templates as raw strings (``r"..."``):
their literal text takes the backslash escapes ``\\n``, ``\\t`` and ``\\\\``, and
their placeholders are expressions in Python source, with none of the limits
Python 3.11 puts on an f-string's expressions (quotes of either kind,
backslashes and nested f-strings are all fine). ``{{`` and ``}}`` are literal
braces; braces inside a placeholder must pair up.
"""

from __future__ import annotations

import ast
import re
from types import CodeType

_WORD = re.compile(r"[A-Za-z_]\w*")
_BRACE = re.compile(r"[{}]")


class TemplateError(ValueError):
    """A field table's expression or template that does not parse (raised at import)."""


class Expression:
    """One Python expression of a field table: its source, its tree and its code."""

    __slots__ = ("source", "where", "_tree", "_names", "_code", "words")

    def __init__(self, source: str, where: str = "") -> None:
        self.source = source
        self.where = where
        # parsed when first read, or with others by parse_together(); compiled when first
        # evaluated: start-up pays for what it uses
        self._tree: ast.expr | None = None
        self._names: set[str] | None = None
        self._code: CodeType | None = None
        #: the identifiers in the source: the names it reads and maybe more (attributes, words
        #: in strings), found without parsing; enough to pick the values a renderer needs
        self.words = frozenset(_WORD.findall(source))

    @property
    def tree(self) -> ast.expr:
        if self._tree is None:
            try:
                self._tree = ast.parse(self.source.strip(), mode="eval").body
            except SyntaxError as e:
                raise TemplateError(f"{self.where}: not a Python expression: {self.source!r} ({e.msg})") from None
        return self._tree

    def eval(self, namespace: dict) -> object:
        """The expression's value with ``namespace`` as its globals (comprehensions see them too)."""
        code = self._code
        if code is None:
            code = self._code = compile(ast.Expression(self.tree), f"<{self.where or 'expression'}>", "eval")
        return eval(code, namespace)  # noqa: S307 - the field table's own source, never input

    def names(self) -> set[str]:
        """The names the expression reads (comprehension variables excluded)."""
        if self._names is None:
            self._names = names_read(self.tree)
        return self._names

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def parse_together(expressions) -> None:
    """Parse ``expressions`` in one call of the parser, as elements of one tuple (a table has
    dozens: one call costs much less than one each). Any that does not parse alone raises
    :class:`TemplateError` for itself."""
    todo = [e for e in expressions if e._tree is None]
    if not todo:
        return
    text = "(\n" + "".join(f"({e.source.strip()}),\n" for e in todo) + ")"
    trees: list[ast.expr] = []
    try:
        together = ast.parse(text, mode="eval").body
    except SyntaxError:
        pass
    else:
        if isinstance(together, ast.Tuple):  # else some source closed the parentheses: parse alone
            trees = together.elts
    if len(trees) != len(todo):
        for e in todo:
            e.tree  # noqa: B018 - parsed alone, the culprit names itself
        return
    for e, tree in zip(todo, trees, strict=True):
        e._tree = tree


class Template:
    """Literal text with ``{expression}`` placeholders: see the module's docstring."""

    __slots__ = ("source", "parts")

    def __init__(self, source: str, where: str = "") -> None:
        self.source = source
        self.parts: tuple[str | Expression, ...] = tuple(_split(source, where))

    @classmethod
    def prefixed(cls, text: str, template: Template) -> Template:
        """``template`` after the literal ``text`` (no placeholders read in ``text``)."""
        joined = cls.__new__(cls)
        joined.source = text.replace("{", "{{").replace("}", "}}") + template.source
        joined.parts = (text, *template.parts)
        return joined

    def render(self, namespace: dict) -> str:
        """The text, each placeholder's value formatted as an f-string would (``format(value)``)."""
        return "".join(part if isinstance(part, str) else format(part.eval(namespace)) for part in self.parts)

    def expressions(self) -> list[Expression]:
        """The placeholders."""
        return [part for part in self.parts if not isinstance(part, str)]

    def names(self) -> set[str]:
        """The names the placeholders read."""
        out: set[str] = set()
        for part in self.expressions():
            out |= part.names()
        return out

    def words(self) -> set[str]:
        """The identifiers in the placeholders (see :attr:`Expression.words`)."""
        out: set[str] = set()
        for part in self.expressions():
            out |= part.words
        return out

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


def _split(source: str, where: str):
    """The literal texts (escapes decoded) and the placeholders of ``source``, in order."""
    literal: list[str] = []
    pos, depth, opened = 0, 0, 0  # scanned up to pos; depth of braces in a placeholder from opened
    for brace in _BRACE.finditer(source):
        i = brace.start()
        if i < pos:
            continue  # the second brace of a doubled one
        ch = source[i]
        if depth:
            depth += 1 if ch == "{" else -1
            if not depth:
                yield Expression(source[opened + 1 : i], where)
                pos = i + 1
        elif source.startswith(ch * 2, i):
            literal.append(source[pos:i] + ch)
            pos = i + 2
        elif ch == "}":
            raise TemplateError(f"{where}: single '}}' in template {source!r}")
        else:
            literal.append(source[pos:i])
            if any(literal):
                yield _unescape("".join(literal), source, where)
            literal.clear()
            depth, opened = 1, i
    if depth:
        raise TemplateError(f"{where}: unclosed '{{' in template {source!r}")
    literal.append(source[pos:])
    if any(literal):
        yield _unescape("".join(literal), source, where)


_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


def _unescape(text: str, source: str, where: str) -> str:
    """``text`` with its escapes ``\\n``, ``\\t`` and ``\\\\`` decoded (all a listing's
    layout needs; codecs' unicode_escape would cost an import at start-up)."""
    if "\\" not in text:
        return text
    out: list[str] = []
    pos = 0
    while (i := text.find("\\", pos)) >= 0:
        decoded = _ESCAPES.get(text[i + 1 : i + 2])
        if decoded is None:
            raise TemplateError(f"{where}: escape other than \\n, \\t, \\\\ in template {source!r}")
        out += (text[pos:i], decoded)
        pos = i + 2
    out.append(text[pos:])
    return "".join(out)


def names_read(tree: ast.AST) -> set[str]:
    """The names an expression tree reads, less those its comprehensions bind."""
    read: set[str] = set()
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
    return read - bound
