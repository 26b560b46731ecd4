"""``bpft prog dump { xlated | jited } PROG [{ file FILE | opcodes | visual | linum }]``.

bpftool's do_dump() / prog_dump(): fetch the image and its side tables
(func_info, line_info, jited ksyms and lengths) in a second info call, then
write the raw image to a file, the control-flow graph (xlated ``visual``),
the disassembly of the JIT image (``jited``, capstone, imported only here) or
of the translated instructions, plain or JSON.
"""

from __future__ import annotations

import os
import struct
from bisect import bisect_left
from collections.abc import Iterator
from operator import itemgetter

from bpft.api import Context
from bpft.errors import BpftError, SilentFailure, UsageError
from bpft.grammar import Args, is_prefix
from bpft.kernel import info as kinfo
from bpft.kernel import uapi
from bpft.output import json_quote, json_writer_of
from bpft.parallel import PARTS_PER_WORKER, render_partitions, worker_count

from .disasm import Disasm
from .linfo import ProgLinfo, linfo_json, linfo_plain


def run(ctx: Context, args: Args) -> int:
    word = args.current
    if is_prefix(word, "jited"):
        mode = "jited"
    elif is_prefix(word, "xlated"):
        mode = "xlated"
    else:
        raise BpftError(f"expected 'xlated' or 'jited', got: {'(null)' if word is None else word}")
    args.next()
    if len(args) < 2:
        raise UsageError()
    fds = ctx.prog_fds(args)
    if not fds:
        raise SilentFailure()
    try:
        filepath, opcodes, visual, linum = None, False, False, False
        word = args.current
        if is_prefix(word, "file"):
            args.next()
            if not args:
                raise BpftError("expected file path")
            if len(fds) > 1:
                raise BpftError("several programs matched")
            filepath = args.next()
        elif is_prefix(word, "opcodes"):
            opcodes = True
            args.next()
        elif is_prefix(word, "visual"):
            if len(fds) > 1:
                raise BpftError("several programs matched")
            visual = True
            args.next()
        elif is_prefix(word, "linum"):
            linum = True
            args.next()
        if args:
            raise UsageError()
        dumper = Dumper(ctx, mode, filepath, opcodes, visual, linum)
        dumper.run(fds)
    finally:
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
    return 0


class Dumper:
    def __init__(self, ctx: Context, mode: str, filepath, opcodes: bool, visual: bool, linum: bool):
        self.ctx = ctx
        self.mode = mode
        self.filepath = filepath
        self.opcodes = opcodes
        self.visual = visual
        self.linum = linum
        self.json = ctx.json
        self.out = ctx.emitter.out
        self._ksyms = None

    def ksyms(self):
        from bpft.kernel import kallsyms

        return kallsyms.load()

    # -- plain/JSON plumbing
    def write(self, text: str) -> None:
        if self.json:
            json_writer_of(self.ctx.emitter).parts.append(text)
        else:
            self.out.write(text)

    def run(self, fds: list[int]) -> None:
        many = len(fds) > 1
        w = json_writer_of(self.ctx.emitter) if self.json else None
        if w is not None and many:
            w.start_array()
        for i, fd in enumerate(fds):
            try:
                base = kinfo.prog_info(fd)
                arrays = kinfo.prog_arrays(fd, base, xlated=self.mode == "xlated", jited=self.mode == "jited")
            except OSError as e:
                raise BpftError(f"can't get prog info: {e.strerror}") from None
            info = arrays.info
            if many:
                if w is not None:
                    w.start_object()
                    self.header_json(w, fd, info)
                    w.name("insns")
                else:
                    self.out.write(self.header_plain(fd, info))
            self.dump(info, arrays)
            if many:
                if w is not None:
                    w.end_object()
                elif i != len(fds) - 1:
                    self.out.write("\n")
        if w is not None and many:
            w.end_array()

    # -- headers (bpftool's print_prog_header_plain / _json)
    @staticmethod
    def _name(fd: int, info) -> str:
        from bpft.progs import full_name

        rec = kinfo.prog_info(fd)
        return full_name(fd, rec)

    def header_plain(self, fd: int, info) -> str:
        tname = uapi.prog_type_name(info.type)
        parts = [f"{info.id}: ", f"{tname}  " if tname else f"type {info.type}  "]
        if info.name:
            parts.append(f"name {self._name(fd, info)}  ")
        parts.append("tag " + bytes(info.tag).hex())
        if info.gpl_compatible:
            parts.append("  gpl")
        if info.run_time_ns:
            parts.append(f" run_time_ns {info.run_time_ns} run_cnt {info.run_cnt}")
        if info.recursion_misses:
            parts.append(f" recursion_misses {info.recursion_misses}")
        return "".join(parts) + "\n"

    def header_json(self, w, fd: int, info) -> None:
        tname = uapi.prog_type_name(info.type)
        w.name("id")
        w.raw(str(info.id))
        w.name("type")
        w.raw(json_quote(tname) if tname else str(info.type))
        if info.name:
            w.name("name")
            w.raw(json_quote(self._name(fd, info)))
        w.name("tag")
        w.raw('"' + bytes(info.tag).hex() + '"')
        w.name("gpl_compatible")
        w.raw("true" if info.gpl_compatible else "false")
        if info.run_time_ns:
            w.name("run_time_ns")
            w.raw(str(info.run_time_ns))
            w.name("run_cnt")
            w.raw(str(info.run_cnt))
        if info.recursion_misses:
            w.name("recursion_misses")
            w.raw(str(info.recursion_misses))

    # -- one program (bpftool's prog_dump)
    def dump(self, info, arrays) -> None:
        if self.mode == "jited":
            image = arrays.jited
            if not info.jited_prog_len or not image:
                self.ctx.info("no instructions returned")
                raise SilentFailure()
        else:
            image = arrays.xlated
            if not info.xlated_prog_len or not image:
                raise BpftError("error retrieving insn dump: kernel.kptr_restrict set?")
        btf = None
        if info.btf_id:
            from bpft.btf import BTFError, load_kernel_btf

            try:
                btf = load_kernel_btf(info.btf_id)
            except (OSError, BTFError):
                raise BpftError("failed to get btf") from None
        linfo = None
        if info.nr_line_info:
            linfo = ProgLinfo.new(info, arrays)
            if linfo is None:
                self.ctx.info("error in processing bpf_line_info.  continue without it.")
        if self.linum and linfo is None and self.filepath is None and not self.visual:
            # bpftool silently prints the listing without source lines; we say why
            self.ctx.info("Warning: no line info for this program: linum has nothing to show")
        if self.filepath is not None:
            self.write_file(image)
            if self.json:
                json_writer_of(self.ctx.emitter).raw("null")
            return
        if self.mode == "jited":
            from .jited import dump_jited

            dump_jited(self, info, arrays, image, btf, linfo)
            return
        if self.visual:
            if self.json:
                json_writer_of(self.ctx.emitter).raw("null")
            else:
                from .cfg import dump_cfg

                dump_cfg(self.out, image, Disasm((), self.ksyms))
            return
        dis = Disasm(arrays.jited_ksyms, self.ksyms)
        funcs = _func_records(arrays.func_info, info.func_info_rec_size) if btf is not None else []
        if self.json:
            w = json_writer_of(self.ctx.emitter)
            w.raw(xlated_json(image, dis, btf, funcs, linfo, self.opcodes, self.linum, w.depth, w.pretty))
        else:
            xlated_plain(self.out, image, dis, btf, funcs, linfo, self.opcodes, self.linum)

    def write_file(self, image: bytes) -> None:
        path = self.filepath
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as e:
            raise BpftError(f"can't open file {path}: {e.strerror}") from None
        try:
            n = os.write(fd, image)
        except OSError as e:
            raise BpftError(f"error writing output file: {e.strerror}") from None
        finally:
            os.close(fd)
        if n != len(image):
            raise BpftError("error writing output file: short write")


def _func_records(data: bytes, rec_size: int) -> list[tuple[int, int]]:
    """(insn_off, type_id) of each bpf_func_info record."""
    if not data or rec_size < 8:
        return []
    return [struct.unpack_from("<II", data, off) for off in range(0, len(data) - rec_size + 1, rec_size)]


def _second_halves(image: bytes) -> set[int]:
    """Indexes of the slots bpftool does not print: the second halves of ld_imm64."""
    codes = image[0 : len(image) // 8 * 8 : 8]
    out: set[int] = set()
    i = codes.find(0x18)
    while i >= 0:
        if i not in out:  # a second half does not start a pair, whatever its opcode
            out.add(i + 1)
        i = codes.find(0x18, i + 1)
    return out


def _annotations(
    image: bytes, btf, funcs, linfo, linum: bool, json: bool, depth: int = 0, pretty: bool = False
) -> list[tuple[int, str]]:
    """(printed slot index, the text that goes before its instruction), by ascending slot: the
    function header and source line (plain), or the JSON members (``"proto"``, ``"src"``...),
    each followed by a comma, to put before ``"disasm"`` in an object written at writer depth
    ``depth + 1``."""
    from bpft.btf import type_signature
    from bpft.output import _render, json_quote

    if (btf is None or not funcs) and linfo is None:
        return []
    n = len(image) // 8
    halves = _second_halves(image)
    lead = "\n" + "    " * (depth + 2) if pretty else ""
    sep = ": " if pretty else ":"

    def members(pairs) -> str:
        return "".join(f"{lead}{json_quote(k)}{sep}{_render(v, depth + 2, pretty)}," for k, v in pairs)

    ann: dict[int, str] = {}
    if btf is not None and funcs:
        # bpftool meets the func records in order as it walks the printed slots: a record
        # whose offset it has walked past (or never prints) stops the headers there
        last = -1
        for off, type_id in funcs:
            if off <= last or off >= n or off in halves:
                break
            last = off
            sig = type_signature(btf, type_id)
            if sig:
                ann[off] = members([("proto", sig)]) if json else f"{sig}:\n"
    if linfo is not None:
        texts: dict[tuple, str] = {}  # per distinct (file, line, column): many slots share one
        for off, rec in linfo.by_insn_off().items():
            if off >= n or off in halves:
                continue
            key = rec[1:] if linum else rec[2]
            text = texts.get(key)
            if text is None:
                text = members(linfo_json(btf, rec, linum)) if json else linfo_plain(btf, rec, "; ", linum)
                texts[key] = text
            ann[off] = ann[off] + text if off in ann else text
    return sorted(ann.items())


def _braces(text: str) -> str:
    """``text`` as a literal inside a str.format text."""
    return text.replace("{", "{{").replace("}", "}}")


def _fill_specials(texts: list[str], image: bytes, dis: Disasm, wrap, start: int, stop: int) -> None:
    """Put in ``texts`` (slots ``start``..``stop``, from :meth:`Disasm.listing`) what its formats
    leave out: ``wrap(i, text)`` of the :data:`SPECIAL` instructions, and ``""`` for the second
    halves of ld_imm64, which bpftool does not print."""
    end = min(len(image) // 8, stop)
    skipped = -1
    for i in dis.special_slots(image, start, stop):
        if i == skipped:
            continue
        texts[i - start] = wrap(i, dis.slot(image, i))
        if image[i * 8] == 0x18 and i + 1 < end:
            skipped = i + 1
            texts[skipped - start] = ""


def _annotate(texts: list[str], ann: list[tuple[int, str]], start: int, stop: int, json: bool) -> None:
    """Put each annotation of :func:`_annotations` before its slot's text (``texts`` hold slots
    ``start``..``stop``): a line before the line, or members at the start of the JSON object.
    The annotations of the range are found by bisection: a long image has many ranges."""
    for k in range(bisect_left(ann, start, key=itemgetter(0)), len(ann)):
        i, a = ann[k]
        if i >= stop:
            break
        t = texts[i - start]
        texts[i - start] = "{" + a + t[1:] if json else a + t


#: slots a forked worker must have to be worth its fork (a slot costs ~1 µs to format)
SLOTS_PER_WORKER = 20_000


def _ranges(image: bytes, count: int) -> list[tuple[int, int]]:
    """The image's slots cut into ``count`` contiguous ranges, never between the halves of an ld_imm64.

    A loaded program's second half of an ld_imm64 has opcode 0, so a cut
    after a slot of opcode 0x18 would split one: such a cut moves on a slot.
    """
    n = len(image) // 8
    cuts = [0]
    for k in range(1, count):
        cut = max(n * k // count, cuts[-1])
        while 0 < cut < n and image[(cut - 1) * 8] == 0x18:
            cut += 1
        cuts.append(cut)
    cuts.append(n)
    return [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if a < b]


def _rendered(image: bytes, dis: Disasm, render_range) -> Iterator[str]:
    """``render_range(start, stop)`` over the image's slots, in forked workers when it is long; texts in order."""
    workers = worker_count(len(image) // 8, SLOTS_PER_WORKER)
    if workers == 1:
        yield render_range(0, len(image) // 8)
        return
    dis.load_ksyms_for(image)  # once, before the fork, not once per worker

    def part(start: int, stop: int):
        return lambda: ([render_range(start, stop)], None, 0)

    ranges = _ranges(image, workers * PARTS_PER_WORKER)
    for texts in render_partitions([part(*r) for r in ranges], workers):
        yield from texts


def xlated_plain(out, image: bytes, dis: Disasm, btf, funcs, linfo, opcodes: bool, linum: bool) -> None:
    """bpftool's dump_xlated_plain()."""
    ann = _annotations(image, btf, funcs, linfo, linum, json=False)
    n = len(image) // 8
    tail = "\n       {6}\n" if opcodes else "\n"

    def wrap(i: int, t: str) -> str:
        text = f"{i: 4d}: {t}\n"
        if opcodes:
            hx = image[i * 8 : i * 8 + 8].hex(" ")
            if image[i * 8] == 0x18:
                hx += " " + (image[i * 8 + 8 : i * 8 + 16].hex(" ") if i + 1 < n else "")
            text += f"       {hx}\n"
        return text

    def render_range(start: int, stop: int) -> str:
        # "% 4d: " pads the first thousand slot numbers; beyond, it is a space and the number
        texts = dis.listing(image, "{5: 4d}: ", tail, True, opcodes, start, min(stop, 1000))
        texts += dis.listing(image, " {5}: ", tail, True, opcodes, max(start, 1000), stop)
        _fill_specials(texts, image, dis, wrap, start, stop)
        _annotate(texts, ann, start, stop, json=False)
        return "".join(texts)

    for text in _rendered(image, dis, render_range):
        out.write(text)


def _hex_array(data: bytes) -> list:
    from bpft.output import RawJson

    return [RawJson(f'"0x{b:02x}"') for b in data]


def xlated_json(
    image: bytes, dis: Disasm, btf, funcs, linfo, opcodes: bool, linum: bool, depth: int, pretty: bool
) -> str:
    """bpftool's dump_xlated_json() as text, for an array written at writer depth ``depth``."""
    from bpft.output import RawJson, _render

    ann = _annotations(image, btf, funcs, linfo, linum, True, depth, pretty)
    if pretty:
        lead = "\n" + "    " * (depth + 2)
        close = "\n" + "    " * (depth + 1) + "}"
        head = "{" + lead + '"disasm": "'
        tail = '"' + close
    else:
        head = '{"disasm":"'
        tail = '"}'
    n = len(image) // 8

    def with_opcodes(i: int, t: str) -> str:
        slot = image[i * 8 : i * 8 + 8]
        imm = image[i * 8 + 4 : i * 8 + 16] if slot[0] == 0x18 and i + 1 < n else slot[4:8]
        o = {
            "disasm": RawJson('"' + t + '"'),
            "opcodes": {
                "code": RawJson(f'"0x{slot[0]:02x}"'),
                "src_reg": RawJson(f'"0x{slot[1] >> 4:x}"'),
                "dst_reg": RawJson(f'"0x{slot[1] & 0xF:x}"'),
                "off": _hex_array(slot[2:4]),
                "imm": _hex_array(imm),
            },
        }
        return _render(o, depth + 1, pretty)

    if opcodes:
        # every object is built in Python; the texts still come from the bulk formatter

        def render_range(start: int, stop: int) -> str:
            texts = dis.listing(image, start=start, stop=stop)
            _fill_specials(texts, image, dis, lambda i, t: t, start, stop)
            for i in range(start, stop):
                if texts[i - start]:  # "" for the second half of an ld_imm64
                    texts[i - start] = with_opcodes(i, texts[i - start])
            _annotate(texts, ann, start, stop, json=True)
            return ",".join(filter(None, texts))

    else:
        braced_head, braced_tail = _braces(head), _braces(tail)

        def render_range(start: int, stop: int) -> str:
            texts = dis.listing(image, braced_head, braced_tail, start=start, stop=stop)
            _fill_specials(texts, image, dis, lambda i, t: head + t + tail, start, stop)
            _annotate(texts, ann, start, stop, json=True)
            return ",".join(filter(None, texts))

    body = ",".join(_rendered(image, dis, render_range))
    if not body:
        return "[]"
    end = ("\n" + "    " * depth + "]") if pretty else "]"
    return "[" + body + end
