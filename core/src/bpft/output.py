"""Output writers: bpftool's plain text and JSON, and a table.

Every verb writes through an :class:`Emitter`, chosen by the global options
(``-j``/``-p``, ``--table``, or a format a plugin adds): it hands over
:class:`Record` objects, and the emitter renders them. So plain and JSON of
one verb never drift apart, and a new format works for every verb.

:class:`JsonWriter` reproduces bpftool's streaming json_writer byte for byte
(separators, pretty-print indentation, the trailing newline), with one
deliberate difference: strings are escaped as JSON requires. bpftool writes
``\\'`` for a quote and ``\\n`` for a backslash, and raw control bytes, which no
JSON parser accepts; the BPF object names bpftool prints never contain them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from .records import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, TextIO


class RawJson(str):
    """Text to place in JSON output as is (bpftool's ``jsonw_printf``)."""


_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f", "\b": "\\b", "\\": "\\\\", '"': '\\"'}


def json_quote(text: str) -> str:
    """A JSON string literal of ``text``, escaping what bpftool escapes (and control bytes)."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    out = ['"']
    for ch in text:
        esc = _ESCAPES.get(ch)
        if esc:
            out.append(esc)
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_KEYS: dict[str, str] = {}  # compact '"key":' texts


def _scalar(v: Any) -> str | None:
    t = type(v)
    if t is int:
        return str(v)
    if t is str:
        return json_quote(v)
    if t is bool:
        return "true" if v else "false"
    if t is RawJson:
        return v
    if v is None:
        return "null"
    if isinstance(v, str):
        return v if isinstance(v, RawJson) else json_quote(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        return f"{v:g}"
    return None


def _render(v: Any, depth: int, pretty: bool) -> str:
    """bpftool's json_writer output for ``v`` written at nesting ``depth``.

    Objects put each name on a new line when pretty; array items follow each
    other without a line break; a non-empty container closes on a new line.
    """
    s = _scalar(v)
    if s is not None:
        return s
    inner = depth + 1
    if isinstance(v, dict):
        if not v:
            return "{}"
        lead = "\n" + "    " * inner
        out = []
        for k, x in v.items():
            if pretty:
                key = lead + json_quote(k) + ": "
            else:
                known = _KEYS.get(k)
                key = known if known is not None else _KEYS.setdefault(k, json_quote(k) + ":")
            xs = _scalar(x)
            out.append(key + (xs if xs is not None else _render(x, inner, pretty)))
        return "{" + ",".join(out) + (("\n" + "    " * depth) if pretty else "") + "}"
    if isinstance(v, (list, tuple)):
        if not v:
            return "[]"
        body = ",".join(_render(x, inner, pretty) for x in v)
        return "[" + body + (("\n" + "    " * depth) if pretty else "") + "]"
    return json_quote(str(v))


def render_json(v: Any) -> str:
    """``v`` as compact JSON text, as bpftool's json_writer writes it."""
    return _render(v, 0, False)


class JsonWriter:
    """bpftool's streaming JSON writer (json_writer.c semantics), into a buffer."""

    def __init__(self, pretty: bool = False):
        self.pretty = pretty
        self.parts: list[str] = []
        self.depth = 0
        self.sep = ""  # "" or ","
        self.stack: list[str] = []

    # -- structure
    def _eol(self) -> None:
        if self.pretty:
            self.parts.append("\n" + "    " * self.depth)

    def _eor(self) -> None:
        if self.sep:
            self.parts.append(self.sep)
        self.sep = ","

    def _begin(self, ch: str) -> None:
        self._eor()
        self.parts.append(ch)
        self.depth += 1
        self.sep = ""
        self.stack.append("}" if ch == "{" else "]")

    def _end(self) -> None:
        ch = self.stack.pop()
        self.depth -= 1
        if self.sep:
            self._eol()
        self.parts.append(ch)
        self.sep = ","

    def start_object(self) -> None:
        self._begin("{")

    def start_array(self) -> None:
        self._begin("[")

    def end_object(self) -> None:
        self._end()

    def end_array(self) -> None:
        self._end()

    def close_all(self) -> None:
        while self.stack:
            self._end()

    def name(self, key: str) -> None:
        self._eor()
        self._eol()
        self.sep = ""
        self.parts.append(json_quote(key) + (": " if self.pretty else ":"))

    # -- values
    def raw(self, text: str) -> None:
        self._eor()
        self.parts.append(text)

    def raw_values(self, texts: list[str]) -> None:
        """:meth:`raw` of each text in turn (values of the open array), in one append."""
        if texts:
            self._eor()
            self.parts.append(",".join(texts))

    def string(self, text: str) -> None:
        self.raw(json_quote(text))

    def value(self, v: Any) -> None:
        """Write a Python value: dict -> object (in order), list/tuple -> array, scalars.

        Equivalent to the matching sequence of start/name/value/end calls, but
        rendered in one pass (this is the hot path of ``prog show -j``).
        """
        self._eor()
        self.parts.append(_render(v, self.depth, self.pretty))

    def reset(self) -> None:
        """jsonw_reset(): forget the separator, as bpftool does between plain-text metadata values."""
        self.sep = ""

    def take(self) -> str:
        text = "".join(self.parts)
        self.parts.clear()
        return text


class Record:
    """One unit of output: a JSON value, its plain-text rendering, a table row.

    ``plain`` and ``row`` may be callables, so a JSON run never builds text.
    """

    __slots__ = ("json", "_plain", "_row")

    def __init__(self, json: Any, plain: str | Callable[[], str] = "", row: dict | Callable[[], dict] | None = None):
        self.json = json
        self._plain = plain
        self._row = row

    def plain(self) -> str:
        return self._plain() if callable(self._plain) else self._plain

    def row(self) -> dict | None:
        return self._row() if callable(self._row) else self._row


class Emitter:
    """Where a verb's output goes. Subclasses render records in one format."""

    name = "base"
    is_json = False

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None):
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def begin_list(self) -> None:
        """A list of records starts (JSON: ``[``)."""

    def end_list(self) -> None:
        """The list ends (JSON: ``]``)."""

    def record(self, rec: Record) -> None:
        raise NotImplementedError

    # Pre-rendering lets a verb render records in worker processes: ``render``
    # returns exactly the text ``record`` would write at this point of the
    # output, ``emit_rendered`` writes such texts in order. Formats that
    # cannot (the table collects rows) leave ``can_prerender`` False.
    can_prerender = False

    def render(self, rec: Record) -> str:
        raise NotImplementedError

    def emit_rendered(self, texts: list[str]) -> None:
        raise NotImplementedError

    def text(self, text: str) -> None:
        """Free text for plain output (ignored by structured formats)."""

    def error(self, message: str) -> None:
        self.out.flush()
        self.err.write(f"Error: {message}\n")
        self.err.flush()

    def help(self, text: str) -> None:
        """Usage text: to stderr, as bpftool prints it."""
        self.out.flush()
        self.err.write(text)
        self.err.flush()

    def close(self) -> None:
        self.out.flush()


class PlainEmitter(Emitter):
    name = "plain"
    can_prerender = True

    def record(self, rec: Record) -> None:
        self.out.write(rec.plain())

    def render(self, rec: Record) -> str:
        return rec.plain()

    def emit_rendered(self, texts: list[str]) -> None:
        self.out.write("".join(texts))

    def text(self, text: str) -> None:
        self.out.write(text)


class JsonEmitter(Emitter):
    """bpftool's -j/-p output: a JSON writer on stdout, errors as ``{"error": ...}``."""

    name = "json"
    is_json = True

    def __init__(self, pretty: bool = False, out: TextIO | None = None, err: TextIO | None = None):
        super().__init__(out, err)
        self.writer = JsonWriter(pretty)

    def _flush(self) -> None:
        self.out.write(self.writer.take())

    def begin_list(self) -> None:
        self.writer.start_array()

    def end_list(self) -> None:
        self.writer.end_array()

    can_prerender = True

    def record(self, rec: Record) -> None:
        self.writer.value(rec.json)
        if len(self.writer.parts) > 4096:
            self._flush()

    def render(self, rec: Record) -> str:
        return _render(rec.json, self.writer.depth, self.writer.pretty)

    def emit_rendered(self, texts: list[str]) -> None:
        self.writer.raw_values(texts)
        self._flush()

    def error(self, message: str) -> None:
        w = self.writer
        w.start_object()
        w.name("error")
        w.raw(json_quote(message))
        w.end_object()

    def help(self, text: str) -> None:
        self.writer.raw("null")

    def close(self) -> None:
        self.writer.close_all()
        self.writer.parts.append("\n")
        self._flush()
        self.out.flush()


def reply_null(emitter: Emitter) -> None:
    """bpftool's reply of a verb that prints nothing: ``null`` under ``-j``, nothing else."""
    if isinstance(emitter, JsonEmitter):
        emitter.writer.raw("null")


def json_writer_of(emitter: Emitter) -> JsonWriter:
    """The JSON writer of ``emitter``, for a verb that writes JSON piece by piece under ``-j``."""
    if not isinstance(emitter, JsonEmitter):
        raise TypeError(f"{type(emitter).__name__} has no JSON writer")
    return emitter.writer


class TableEmitter(Emitter):
    """``--table``: one row per record, columns from the records' ``row()``, via tabulate."""

    name = "table"

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None):
        super().__init__(out, err)
        self.rows: list[dict] = []

    def record(self, rec: Record) -> None:
        row = rec.row()
        if row is None:
            self.out.write(rec.plain())
        else:
            self.rows.append(row)

    def text(self, text: str) -> None:
        self.out.write(text)

    def close(self) -> None:
        if self.rows:
            from tabulate import tabulate

            self.out.write(tabulate(self.rows, headers="keys", tablefmt="simple", disable_numparse=True) + "\n")
            self.rows.clear()
        self.out.flush()
