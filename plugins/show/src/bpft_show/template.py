"""Expressions and text templates, the pieces a field table is written in.

An :class:`Expression` is one Python expression, kept as source, as a parsed
tree (for :mod:`bpft_show.codegen`, which compiles many of them into one
function) and as a code object (for the reference renderers, which evaluate
them one by one in a namespace dict).

A :class:`Template` is the body of an f-string: literal text with
``{expression}`` placeholders. Write templates as raw strings (``r"..."``):
their literal text takes Python's backslash escapes (``\\n``, ``\\t``), and
their placeholders are expressions in Python source, with none of the limits
Python 3.11 puts on an f-string's expressions (quotes of either kind,
backslashes and nested f-strings are all fine). ``{{`` and ``}}`` are literal
braces; braces inside a placeholder must pair up.
"""

from __future__ import annotations

import ast
import codecs
from types import CodeType


class TemplateError(ValueError):
    """A field table's expression or template that does not parse (raised at import)."""


class Expression:
    """One Python expression of a field table: its source, its tree and its code."""

    __slots__ = ("source", "tree", "code")

    def __init__(self, source: str, where: str = "") -> None:
        self.source = source
        try:
            self.tree: ast.expr = ast.parse(source.strip(), mode="eval").body
        except SyntaxError as e:
            raise TemplateError(f"{where}: not a Python expression: {source!r} ({e.msg})") from None
        self.code: CodeType = compile(ast.Expression(self.tree), f"<{where or 'expression'}>", "eval")

    def eval(self, namespace: dict) -> object:
        """The expression's value with ``namespace`` as its globals (comprehensions see them too)."""
        return eval(self.code, namespace)  # noqa: S307 - the field table's own source, never input

    def names(self) -> set[str]:
        """The names the expression reads (comprehension variables excluded)."""
        return names_read(self.tree)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


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
        return "".join(part if type(part) is str else format(part.eval(namespace)) for part in self.parts)

    def names(self) -> set[str]:
        """The names the placeholders read."""
        out: set[str] = set()
        for part in self.parts:
            if type(part) is not str:
                out |= part.names()
        return out

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


def _split(source: str, where: str):
    """The literal texts (escapes decoded) and the placeholders of ``source``, in order."""
    literal: list[str] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch in "{}" and source.startswith(ch * 2, i):
            literal.append(ch)
            i += 2
        elif ch == "}":
            raise TemplateError(f"{where}: single '}}' in template {source!r}")
        elif ch == "{":
            end, depth = i + 1, 1
            while end < n and depth:
                depth += {"{": 1, "}": -1}.get(source[end], 0)
                end += 1
            if depth:
                raise TemplateError(f"{where}: unclosed '{{' in template {source!r}")
            if literal:
                yield _unescape("".join(literal), source, where)
                literal.clear()
            yield Expression(source[i + 1 : end - 1], where)
            i = end
        else:
            literal.append(ch)
            i += 1
    if literal:
        yield _unescape("".join(literal), source, where)


def _unescape(text: str, source: str, where: str) -> str:
    if "\\" not in text:
        return text
    try:
        return codecs.decode(text, "unicode_escape")
    except UnicodeDecodeError as e:
        raise TemplateError(f"{where}: bad escape in template {source!r} ({e.reason})") from None


def names_read(tree: ast.AST) -> set[str]:
    """The names an expression tree reads, less those its comprehensions bind."""
    read, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
    return read - bound
