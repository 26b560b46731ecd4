"""A field table: one description of what a listing prints about each object, in every format.

Each :class:`Field` says, once, everything about one item of the output:
its JSON key (``name``), its value (a Python expression), when it is present
(``when``), its piece of plain text (a :class:`~bpft_show.template.Template`),
its compact JSON text, and its table column. A :class:`FieldTable` holds the
fields in JSON order (which is also the order of the table's columns); a field
whose plain text comes elsewhere says after which field (``plain_after``).

Expressions and templates read names from one namespace per object:

* the object's info fields (``info_fields``, unpacked from the info tuple the
  listing reads) and ``fd``, its file descriptor;
* :class:`Value`\\ s: values of one object that several fields share (its map
  ids, say), computed once, in the order declared;
* :class:`RunValue`\\ s: values of one listing (the pins ``-f`` found, the
  processes holding programs, the clock), made once when it starts;
* ``helpers``: constants and functions (the table's globals), and builtins.

Four renderings come from it. Plain text and compact JSON text, the hot paths
of a listing, are compiled at import into one function each
(:func:`bpft_show.codegen.compile_text_renderer`): :meth:`FieldTable.plain_renderer`,
:meth:`FieldTable.compact_renderer`. Pretty JSON (:meth:`FieldTable.json_value`,
a dict for the JSON writer) and table rows (:meth:`FieldTable.row`) are read
field by field, evaluating each expression in a namespace dict, as is the
reference plain text (:meth:`FieldTable.plain_text`): the tests compare the
compiled texts with these for every test program.

Adding fields
-------------

A module that shows more (such as ``prog show --detail``) does not copy the
renderers: it extends the table, and shows with the extended one::

    # bpft_show/detail.py
    from .fieldtable import Field, RunValue
    from .progfields import PROG_FIELDS

    DETAIL_FIELDS = PROG_FIELDS.extended(
        Field(
            "verified_insns",                       # the JSON key
            when="verified_insns",                  # present when this is true
            plain=r"\\n\\tverified_insns {verified_insns}",  # a raw-string template
            json_text="{verified_insns}",           # default: render_json(value)
            column="verified",                      # a --table column (None: no column)
        ),
        Field(
            "attached",
            value="attach_points.get(id, [])",      # the JSON value and default cell
            when="id in attach_points",
            plain=r"\\n\\tattached {', '.join(attach_points[id])}",
        ),
        after="pids",                 # where the fields go (plain, JSON, columns); default: last
        info=("verified_insns",),     # more bpf_prog_info fields to read (any order)
        run_values=(RunValue("attach_points", lambda options, env: find_attach_points()),),
    )

and :class:`bpft_show.show.Shower` takes the table to show with
(``Shower(ctx, DETAIL_FIELDS)``; :func:`bpft_show.show.fields_for` is where a
listing picks it). The extended table compiles its own fast renderers when it
is made (at the import of its module) and reads the info fields its fields
need. Its tests call ``DETAIL_FIELDS.check()`` (every name an expression reads
is given) and compare its compiled texts with the reference ones, as
``tests/show/test_fields.py`` does for the base table. Fields go after
``pids`` rather than last so that the plain text keeps the metadata block at
its end, as bpftool does. ``values=(Value(name, expr), ...)`` adds values of
one program that several new fields share, ``helpers={...}`` functions and
constants their expressions call.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Sequence

from bpft.output import render_json
from bpft.records import TYPE_CHECKING

from .codegen import Compiled, Piece, Renderer, compile_text_renderer
from .template import Expression, Template, TemplateError, parse_together

if TYPE_CHECKING:  # typing costs start-up (~2 ms): annotations only
    from typing import Any


class Field:
    """One item of an object's output, in every format.

    ``name`` is the JSON key. ``value`` is the expression of the JSON value
    (default: ``name`` itself, an info field or a :class:`Value`). ``when``
    is the expression that says whether the field is there, in every format
    (None: always). ``plain`` is the template of its plain text, separators
    included (None: not in plain text); ``plain_after`` names the field its
    plain text follows, when that differs from the JSON order. ``json_text``
    is the template of the value's compact JSON text (default:
    ``{render_json(value)}``; give it where a cheaper text is exact, such as
    ``{btf_id}`` for an int); with ``in_json=False`` the field has no JSON.
    ``column`` is its header in ``--table`` (None: no column), ``cell`` the
    expression of a cell (default: the value); a cell is ``""`` where the
    field is not there.
    """

    __slots__ = ("name", "value", "when", "plain", "plain_after", "json_text", "in_json", "column", "cell")

    def __init__(
        self,
        name: str,
        *,
        value: str | None = None,
        when: str | None = None,
        plain: str | None = None,
        plain_after: str | None = None,
        json_text: str | None = None,
        in_json: bool = True,
        column: str | None = None,
        cell: str | None = None,
    ) -> None:
        self.name, self.value, self.when = name, value, when
        self.plain, self.plain_after = plain, plain_after
        self.json_text, self.in_json = json_text, in_json
        self.column, self.cell = column, cell

    def __repr__(self) -> str:
        return f"Field({self.name!r})"


class Value:
    """A value of one object that fields share, computed once per object: ``name = expr``.

    It may read the info fields, ``fd``, run values, helpers and earlier values.
    The compiled renderers compute only the values their pieces read.
    """

    __slots__ = ("name", "expr")

    def __init__(self, name: str, expr: str) -> None:
        self.name, self.expr = name, expr


class RunValue:
    """A value of one listing, made once when it starts: ``make(options, env)``, where
    ``options`` are the global options and ``env`` holds the run values made before it."""

    __slots__ = ("name", "make")

    def __init__(self, name: str, make: Callable[[Any, dict], object]) -> None:
        self.name, self.make = name, make


class _Parsed:
    """A field's expressions and templates (parsed together by the table)."""

    __slots__ = ("spec", "when", "value", "plain", "json_text", "cell")

    def __init__(self, spec: Field, where: str) -> None:
        self.spec = spec
        self.when = Expression(spec.when, where) if spec.when is not None else None
        self.value = Expression(spec.value or spec.name, where)
        self.plain = Template(spec.plain, where) if spec.plain is not None else None
        json_text = spec.json_text if spec.json_text is not None else "{render_json(" + self.value.source + ")}"
        self.json_text = Template(json_text, where) if spec.in_json else None
        self.cell = Expression(spec.cell, where) if spec.cell is not None else None

    def expressions(self) -> list[Expression]:
        out = [e for e in (self.when, self.value, self.cell) if e is not None]
        for template in (self.plain, self.json_text):
            if template is not None:
                out += template.expressions()
        return out


class FieldTable:
    """Fields in JSON order, with what their expressions read; see the module's docstring."""

    def __init__(
        self,
        fields: Sequence[Field],
        *,
        info_fields: Sequence[str],
        values: Sequence[Value] = (),
        run_values: Sequence[RunValue] = (),
        helpers: dict | None = None,
        plain_end: str = "\n",
        info_order: Callable[[str], int] | None = None,
        label: str = "fields",
    ) -> None:
        self.fields = tuple(fields)
        self.info_fields = tuple(info_fields)
        self.values = tuple(values)
        self.run_values = tuple(run_values)
        self.helpers = {"render_json": render_json, **(helpers or {})}
        self.plain_end = plain_end
        self.info_order = info_order
        self.label = label
        self._check_names()
        self.plain_order = self._plain_order()
        self.json_order = tuple(f.name for f in self.fields if f.in_json)
        self.columns = tuple(f.column for f in self.fields if f.column is not None)
        # A table is made at import and allocates thousands of tree nodes, which it keeps:
        # the collections they would trigger walk the heap of every module imported so far
        # and free nothing, so they wait (docs/design-notes.md).
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._parsed = {f.name: _Parsed(f, f"{label}: field {f.name}") for f in self.fields}
            self._values = [(v.name, Expression(v.expr, f"{label}: value {v.name}")) for v in self.values]
            parse_together([e for p in self._parsed.values() for e in p.expressions()] + [e for _, e in self._values])
            self._plain = self._compile_plain()
            self._compact = self._compile_compact()
        finally:
            if collecting:
                gc.enable()

    # --- building ------------------------------------------------------------------------

    def extended(
        self,
        *fields: Field,
        after: str | None = None,
        info: Iterable[str] = (),
        values: Sequence[Value] = (),
        run_values: Sequence[RunValue] = (),
        helpers: dict | None = None,
        label: str | None = None,
    ) -> FieldTable:
        """A new table with ``fields`` after the field named ``after`` (default: last), in
        every format where they appear; ``info`` names more info fields to read, ``values``,
        ``run_values`` and ``helpers`` are added after this table's own."""
        names = [f.name for f in self.fields]
        at = len(names) if after is None else self._index(after) + 1
        merged = (*self.fields[:at], *fields, *self.fields[at:])
        info_fields = list(self.info_fields) + [name for name in info if name not in self.info_fields]
        if self.info_order is not None:
            info_fields.sort(key=self.info_order)
        return FieldTable(
            merged,
            info_fields=info_fields,
            values=(*self.values, *values),
            run_values=(*self.run_values, *run_values),
            helpers={**self.helpers, **(helpers or {})},
            plain_end=self.plain_end,
            info_order=self.info_order,
            label=label or f"{self.label}+{'+'.join(f.name for f in fields)}",
        )

    def run_env(self, options: Any, **given: object) -> dict:
        """The run values of one listing, made in order; ``given`` ones are taken as they are."""
        unknown = set(given) - {rv.name for rv in self.run_values}
        if unknown:
            raise TypeError(f"{self.label}: no run values named {', '.join(sorted(unknown))}")
        env: dict = {}
        for rv in self.run_values:
            env[rv.name] = given[rv.name] if rv.name in given else rv.make(options, env)
        return env

    # --- the fast paths (compiled) --------------------------------------------------------

    def plain_renderer(self, env: dict) -> Renderer:
        """``render(fd, info)``: the plain text of one object, compiled (see :meth:`plain_text`)."""
        return self._plain.make(env)

    def compact_renderer(self, env: dict) -> Renderer:
        """``render(fd, info)``: the compact JSON text of one object, compiled (see :meth:`compact_text`)."""
        return self._compact.make(env)

    def generated_source(self, form: str) -> str:
        """The source of the compiled renderer of ``form`` (``"plain"`` or ``"compact"``), to read."""
        return {"plain": self._plain, "compact": self._compact}[form].source

    # --- the reference paths (field by field) --------------------------------------------

    def namespace(self, env: dict, fd: int, info: tuple) -> dict:
        """What the expressions of one object read: helpers, run values, ``fd``, info fields, values."""
        ns = {**self.helpers, **env, "fd": fd, **dict(zip(self.info_fields, info, strict=True))}
        for name, expr in self._values:
            ns[name] = expr.eval(ns)
        return ns

    def plain_text(self, env: dict, fd: int, info: tuple) -> str:
        """The plain text of one object, field by field in plain order."""
        ns = self.namespace(env, fd, info)
        texts = []
        for name in self.plain_order:
            p = self._parsed[name]
            if p.plain is not None and (p.when is None or p.when.eval(ns)):
                texts.append(p.plain.render(ns))
        return "".join(texts) + self.plain_end

    def json_value(self, env: dict, fd: int, info: tuple) -> dict:
        """The JSON object of one object, as a dict in JSON order (for the JSON writer)."""
        ns = self.namespace(env, fd, info)
        out = {}
        for name in self.json_order:
            p = self._parsed[name]
            if p.when is None or p.when.eval(ns):
                out[name] = p.value.eval(ns)
        return out

    def compact_text(self, env: dict, fd: int, info: tuple) -> str:
        """The compact JSON text of one object, from :meth:`json_value`."""
        return render_json(self.json_value(env, fd, info))

    def row(self, env: dict, fd: int, info: tuple) -> dict:
        """The ``--table`` row of one object: ``{column: cell}``, ``""`` for a field not there."""
        ns = self.namespace(env, fd, info)
        out = {}
        for f in self.fields:
            if f.column is None:
                continue
            p = self._parsed[f.name]
            out[f.column] = (p.cell or p.value).eval(ns) if p.when is None or p.when.eval(ns) else ""
        return out

    # --- checks and compilation ----------------------------------------------------------

    def _index(self, name: str) -> int:
        for i, f in enumerate(self.fields):
            if f.name == name:
                return i
        raise TemplateError(f"{self.label}: no field named {name!r}")

    def _check_names(self) -> None:
        seen: set[str] = set()
        for f in self.fields:
            if f.name in seen:
                raise TemplateError(f"{self.label}: two fields named {f.name!r}")
            seen.add(f.name)
        groups = {
            "info field": set(self.info_fields),
            "value": {v.name for v in self.values},
            "run value": {rv.name for rv in self.run_values},
        }
        kinds = list(groups.items())
        for i, (kind, names) in enumerate(kinds):
            for other, other_names in kinds[i + 1 :]:
                both = names & other_names
                if both:
                    raise TemplateError(f"{self.label}: {', '.join(sorted(both))}: both {kind} and {other}")

    def _plain_order(self) -> tuple[str, ...]:
        order = [f.name for f in self.fields if f.plain_after is None]
        for f in self.fields:
            if f.plain_after is not None:
                if f.plain_after not in order:
                    raise TemplateError(f"{self.label}: field {f.name} follows {f.plain_after!r}, not placed yet")
                order.insert(order.index(f.plain_after) + 1, f.name)
        return tuple(order)

    def check(self) -> None:
        """Compile the renderers again, checking that every name an expression reads is given
        (an info field, ``fd``, a value, a run value, a helper or a builtin); raise
        :class:`~bpft_show.template.TemplateError` if one is not. Making a table checks
        templates and syntax but not names (start-up would pay a walk of every tree): the
        tests of a table call this."""
        self._compile_plain(check_names=True)
        self._compile_compact(check_names=True)

    def _compile(self, form: str, pieces: list[Piece], prefix: str, suffix: str, check_names: bool) -> Compiled:
        return compile_text_renderer(
            label=f"{self.label} {form}",
            info_fields=self.info_fields,
            values=self._values,
            pieces=pieces,
            run_names=[rv.name for rv in self.run_values],
            helpers=self.helpers,
            prefix=prefix,
            suffix=suffix,
            check_names=check_names,
        )

    def _compile_plain(self, check_names: bool = False) -> Compiled:
        parsed = [self._parsed[name] for name in self.plain_order]
        pieces = [Piece(p.when, p.plain) for p in parsed if p.plain is not None]
        return self._compile("plain", pieces, "", self.plain_end, check_names)

    def _compile_compact(self, check_names: bool = False) -> Compiled:
        parsed = [self._parsed[name] for name in self.json_order]
        if not parsed or parsed[0].when is not None:
            raise TemplateError(f"{self.label}: the first JSON field must always be there (it takes no comma)")
        pieces = []
        for i, p in enumerate(parsed):
            key = render_json(p.spec.name) + ":"
            assert p.json_text is not None  # json_order holds the fields in JSON
            pieces.append(Piece(p.when, Template.prefixed(key if i == 0 else "," + key, p.json_text)))
        return self._compile("compact", pieces, "{", "}", check_names)
