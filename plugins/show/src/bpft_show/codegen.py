"""Compile a field table's pieces of text into one Python function: the fast path.

A listing renders thousands of programs, and in Python the cost of a text is
the bytecode between the kernel's answer and the string. The fastest text is
what a careful hand would write: the info tuple unpacked into locals, the
few values computed once, and one f-string whose optional pieces are
``{piece if condition else ""}``. :func:`compile_text_renderer` writes that
function from the table's description, at import, as an abstract syntax tree
(compiled with :func:`compile`, so a template's expressions may use any
quotes and backslashes), and binds the listing's run values (pins, pids, the
clock...) as closure variables when a listing starts. The reference renderers
of :class:`bpft_show.fieldtable.FieldTable` evaluate the same pieces one by
one; the tests hold the two to the same text for every test program.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable, Collection, Sequence

from .template import Expression, Template, TemplateError

#: What a compiled factory returns: ``render(fd, info) -> str`` for one listing.
Renderer = Callable[[int, tuple], str]


class Piece:
    """A piece of text, present when ``when`` is true (always when it is None)."""

    __slots__ = ("when", "template")

    def __init__(self, when: Expression | None, template: Template) -> None:
        self.when, self.template = when, template


class Compiled:
    """A compiled renderer factory, ``make(env)``, and (for readers) the source of what it runs."""

    __slots__ = ("make", "_module")

    def __init__(self, make: Callable[[dict], Renderer], module: ast.Module) -> None:
        self.make = make
        self._module = module

    @property
    def source(self) -> str:
        return ast.unparse(self._module)  # not valid Python 3.11 where f-strings nest; to read


def compile_text_renderer(
    *,
    label: str,
    info_fields: Sequence[str],
    values: Sequence[tuple[str, Expression]],
    pieces: Sequence[Piece],
    run_names: Collection[str],
    helpers: dict,
    prefix: str = "",
    suffix: str = "",
    check_names: bool = False,
) -> Compiled:
    """``make(env)``, which returns ``render(fd, info)``: ``prefix``, the pieces present, ``suffix``.

    ``info`` is unpacked into ``info_fields``; each of ``values`` (name,
    expression) that a piece reads, directly or through another value, is
    computed once, in the order given; the names in ``run_names`` are read
    from ``env`` once per listing; every other name must be one of
    ``helpers`` (the function's globals) or a builtin. Adjacent pieces with
    the same condition share one test. With ``check_names``, a name that is
    none of these raises :class:`~bpft_show.template.TemplateError` here
    rather than NameError at the first program (it costs a walk of every
    tree: tests ask for it, start-up does not).
    """
    groups = _groups(pieces)
    # the names the pieces read, and maybe a few more (see Expression.words): which values to
    # compute and which run values to bind; an extra one costs a little, none is missed
    read: set[str] = set()
    for when, templates in groups:
        if when is not None:
            read |= when.words
        for template in templates:
            read |= template.words()
    needed = _values_needed(read, values)
    for name, expr in values:
        if name in needed:
            read |= expr.words
    if check_names:
        known = {"fd", *info_fields, *(name for name, _ in values), *run_names, *helpers, *dir(builtins)}
        _check_names(label, groups, [expr for name, expr in values if name in needed], known)
    body: list[ast.stmt] = [
        ast.Assign(
            targets=[ast.Tuple([ast.Name(name, ast.Store()) for name in info_fields], ast.Store())],
            value=ast.Name("info", ast.Load()),
        )
    ]
    body += [
        ast.Assign(targets=[ast.Name(name, ast.Store())], value=expr.tree) for name, expr in values if name in needed
    ]
    body.append(ast.Return(_joined([prefix, *_group_nodes(groups), suffix])))
    render = ast.FunctionDef(
        name="render",
        args=_args("fd", "info"),
        body=body,
        decorator_list=[],
        returns=None,
    )
    bind = [
        ast.Assign(
            targets=[ast.Name(name, ast.Store())],
            value=ast.Subscript(ast.Name("env", ast.Load()), ast.Constant(name), ast.Load()),
        )
        for name in sorted(read & set(run_names))
    ]
    make = ast.FunctionDef(
        name="make",
        args=_args("env"),
        body=[*bind, render, ast.Return(ast.Name("render", ast.Load()))],
        decorator_list=[],
        returns=None,
    )
    module = ast.Module(body=[make], type_ignores=[])
    _locate(module)
    namespace = dict(helpers)
    exec(compile(module, f"<bpft_show field table: {label}>", "exec"), namespace)  # noqa: S102 - our own tree
    return Compiled(namespace["make"], module)


def _groups(pieces: Sequence[Piece]) -> list[tuple[Expression | None, list[Template]]]:
    """The pieces, adjacent ones with the same condition (by source) in one group."""
    groups: list[tuple[Expression | None, list[Template]]] = []
    for piece in pieces:
        source = piece.when.source.strip() if piece.when is not None else None
        if groups:
            last_when, templates = groups[-1]
            if (last_when.source.strip() if last_when is not None else None) == source:
                templates.append(piece.template)
                continue
        groups.append((piece.when, [piece.template]))
    return groups


def _check_names(label: str, groups, value_exprs: list[Expression], known: set[str]) -> None:
    """Raise TemplateError for a name the pieces or their values read that nothing gives."""
    read: set[str] = set()
    for when, templates in groups:
        if when is not None:
            read |= when.names()
        for template in templates:
            read |= template.names()
    for expr in value_exprs:
        read |= expr.names()
    unknown = sorted(read - known)
    if unknown:
        raise TemplateError(f"{label}: unknown names {', '.join(unknown)}")


def _values_needed(read: set[str], values: Sequence[tuple[str, Expression]]) -> set[str]:
    """The values ``read`` needs, and the values those need (a value reads only earlier ones)."""
    needed = set()
    for name, expr in reversed(values):
        if name in read or name in needed:
            needed.add(name)
            needed |= expr.words
    return needed & {name for name, _ in values}


def _group_nodes(groups) -> list:
    """The f-string parts of the groups: an unconditional group's parts as they are, a
    conditional one as ``{f"..." if when else ""}``."""
    out: list = []
    for when, templates in groups:
        parts = [part for template in templates for part in template.parts]
        if when is None:
            out += parts
        else:
            out.append(ast.IfExp(when.tree, _joined(parts), ast.Constant("")))
    return out


def _joined(parts: list) -> ast.expr:
    """An f-string (``ast.JoinedStr``) of literal texts, expressions and ast nodes, adjacent
    literals merged; a lone literal stays a constant."""
    values: list[ast.expr] = []
    text = ""  # the literal text since the last placeholder
    for part in parts:
        if isinstance(part, str):
            text += part
            continue
        if text:
            values.append(ast.Constant(text))
            text = ""
        node = part.tree if isinstance(part, Expression) else part
        values.append(ast.FormattedValue(node, -1, None))
    if text:
        values.append(ast.Constant(text))
    if not values:
        return ast.Constant("")
    if len(values) == 1 and isinstance(values[0], ast.Constant):
        return values[0]
    return ast.JoinedStr(values)


def _locate(node: ast.AST) -> None:
    """Give the nodes made here a location (line 1): the compiler wants one. Unlike
    ast.fix_missing_locations, stop at parsed expressions, which have theirs."""
    if "lineno" in node._attributes:
        if "lineno" in node.__dict__:
            return
        # mypy cannot narrow on _attributes: this node is one of those with a location
        node.lineno = node.end_lineno = 1  # type: ignore[attr-defined]
        node.col_offset = node.end_col_offset = 0  # type: ignore[attr-defined]
    for child in ast.iter_child_nodes(node):
        _locate(child)


def _args(*names: str) -> ast.arguments:
    return ast.arguments(
        posonlyargs=[],
        args=[ast.arg(name) for name in names],
        kwonlyargs=[],
        kw_defaults=[],
        defaults=[],
    )
