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
import copy
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from .template import Expression, Template, TemplateError

#: What a compiled factory returns: ``render(fd, info) -> str`` for one listing.
Renderer = Callable[[int, tuple], str]


@dataclass(frozen=True, slots=True)
class Piece:
    """A piece of text, present when ``when`` is true (always when it is None)."""

    when: Expression | None
    template: Template


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled renderer factory and, for readers, the source of what it runs."""

    make: Callable[[dict], Renderer]
    source: str


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
) -> Compiled:
    """``make(env)``, which returns ``render(fd, info)``: ``prefix``, the pieces present, ``suffix``.

    ``info`` is unpacked into ``info_fields``; each of ``values`` (name,
    expression) that a piece reads, directly or through another value, is
    computed once, in the order given; the names in ``run_names`` are read
    from ``env`` once per listing; every other name must be one of
    ``helpers`` (the function's globals) or a builtin. Adjacent pieces with
    the same condition share one test. A name that is none of these raises
    :class:`~bpft_show.template.TemplateError` here, not at the first program.
    """
    groups = _groups(pieces)
    read = set()
    for when, templates in groups:
        if when is not None:
            read |= when.names()
        for template in templates:
            read |= template.names()
    needed = _values_needed(read, values)
    for name, expr in values:
        if name in needed:
            read |= expr.names()
    known = {"fd", *info_fields, *(name for name, _ in values), *run_names, *helpers, *dir(builtins)}
    unknown = sorted(read - known)
    if unknown:
        raise TemplateError(f"{label}: unknown names {', '.join(unknown)}")

    body: list[ast.stmt] = [
        ast.Assign(
            targets=[ast.Tuple([ast.Name(name, ast.Store()) for name in info_fields], ast.Store())],
            value=ast.Name("info", ast.Load()),
        )
    ]
    body += [
        ast.Assign(targets=[ast.Name(name, ast.Store())], value=copy.deepcopy(expr.tree))
        for name, expr in values
        if name in needed
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
    module = ast.fix_missing_locations(ast.Module(body=[make], type_ignores=[]))
    namespace = dict(helpers)
    exec(compile(module, f"<bpft_show field table: {label}>", "exec"), namespace)  # noqa: S102 - our own tree
    return Compiled(namespace["make"], ast.unparse(module))


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


def _values_needed(read: set[str], values: Sequence[tuple[str, Expression]]) -> set[str]:
    """The values ``read`` needs, and the values those need (a value reads only earlier ones)."""
    needed = set()
    for name, expr in reversed(values):
        if name in read or name in needed:
            needed.add(name)
            needed |= expr.names()
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
            out.append(ast.IfExp(copy.deepcopy(when.tree), _joined(parts), ast.Constant("")))
    return out


def _joined(parts: list) -> ast.expr:
    """An f-string (``ast.JoinedStr``) of literal texts, expressions and ast nodes, adjacent
    literals merged; a lone literal stays a constant."""
    values: list[ast.expr] = []
    for part in parts:
        if isinstance(part, str):
            if not part:
                continue
            if values and isinstance(values[-1], ast.Constant):
                values[-1] = ast.Constant(values[-1].value + part)
            else:
                values.append(ast.Constant(part))
            continue
        node = copy.deepcopy(part.tree) if isinstance(part, Expression) else part
        values.append(ast.FormattedValue(node, -1, None))
    if not values:
        return ast.Constant("")
    if len(values) == 1 and isinstance(values[0], ast.Constant):
        return values[0]
    return ast.JoinedStr(values)


def _args(*names: str) -> ast.arguments:
    return ast.arguments(
        posonlyargs=[],
        args=[ast.arg(name) for name in names],
        kwonlyargs=[],
        kw_defaults=[],
        defaults=[],
    )
