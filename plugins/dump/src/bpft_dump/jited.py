"""``dump jited``: the JIT image disassembled with capstone, in upstream bpftool's LLVM layout.

Upstream bpftool (built with LLVM) prints each instruction as
``"%4x:" + "\\t<mnemonic>\\t<operands>"``, AT&T syntax on x86-64: size
suffixes (``pushq``, ``movq``), immediates in decimal as LLVM prints them
(sign-extended 8-bit immediates, ``# imm = 0x...`` comments beyond
[-256, 255]), displacements in decimal, memory operands without spaces,
branch targets as hex offsets into the function. With ``opcodes`` the raw
bytes follow on a line of their own; with line info the ``; source`` lines
come before the instruction they start. Programs with subprograms get one
section per function, headed by its BTF prototype and its kernel symbol.

JSON: per instruction ``pc``, ``operation`` and ``operands`` (bpftool
splits the text with ``strtok(" \\t,()")``, ``[null]`` when there is none),
``opcodes`` as hex strings.

capstone is imported here only, when ``dump jited`` runs.
"""

from __future__ import annotations

import platform
import re

from bpft.errors import BpftError
from bpft.output import RawJson, _render, json_quote

from .linfo import linfo_json, linfo_plain


def _capstone():
    try:
        import capstone
    except ImportError:
        raise BpftError("no JIT disassembler: install capstone (pip install capstone)") from None
    return capstone


# --- x86-64: capstone's AT&T text -> LLVM's

_IMM = re.compile(r"\$(-?(?:0x[0-9a-f]+|\d+))")
_DISP = re.compile(r"(?<![\w$])(-?0x[0-9a-f]+)(?=\()")
_STAR = re.compile(r"\*(-?0x[0-9a-f]+)(?![\w(])")
_BARE = re.compile(r"(?<![\w$*#])(-?0x[0-9a-f]+)(?![\w(])")
_PARENS = re.compile(r"\(([^)]*)\)")
_BRANCH_GROUPS = (1, 2)  # CS_GRP_JUMP, CS_GRP_CALL


def _imm_comment(v: int) -> str:
    if -0x8000 <= v <= 0x7FFF:
        return f"imm = 0x{v & 0xFFFF:X}"
    if -0x80000000 <= v <= 0x7FFFFFFF:
        return f"imm = 0x{v & 0xFFFFFFFF:X}"
    return f"imm = 0x{v & 0xFFFFFFFFFFFFFFFF:X}"


def _col(text: str) -> int:
    """formatted_raw_ostream's column after ``text``."""
    col = 0
    for ch in text:
        if ch == "\t":  # LLVM's formatted_raw_ostream: a tab at a tab stop adds nothing
            col += (8 - (col & 7)) & 7
        elif ch == "\n":
            col = 0
        else:
            col += 1
    return col


class X86Formatter:
    def __init__(self, cs):
        md = cs.Cs(cs.CS_ARCH_X86, cs.CS_MODE_64)
        md.syntax = cs.CS_OPT_SYNTAX_ATT
        md.detail = True
        self.md = md
        lite = cs.Cs(cs.CS_ARCH_X86, cs.CS_MODE_64)
        lite.syntax = cs.CS_OPT_SYNTAX_ATT
        self.lite = lite  # no detail: ~10x faster; detail only where the text needs it
        self.imm_type = cs.x86.X86_OP_IMM
        self._imm_texts: dict[bytes, str] = {}
        self._branch: dict[str, bool] = {}

    def lines(self, image: bytes, base: int = 0):
        """(pc, size, text) of each instruction capstone decodes from the start of ``image`` (at ``base``).

        Decoded without capstone's detail, which only two things need: the
        values of immediates (cached by the instruction's bytes, whose text
        does not depend on its address unless it is a branch) and whether a
        mnemonic is a branch (cached by mnemonic, from its groups).
        """
        md, texts, branch_of, text_ops = self.md, self._imm_texts, self._branch, self.text_ops
        for pc, size, mnem, ops in self.lite.disasm_lite(image, base):
            if "$" in ops:
                code = image[pc - base : pc - base + size]
                t = texts.get(code)
                if t is None:
                    insn = next(md.disasm(code, pc, 1))
                    t = self.text(insn)
                    if not any(g in _BRANCH_GROUPS for g in insn.groups):
                        texts[code] = t
            else:
                branch = branch_of.get(mnem)
                if branch is None:
                    insn = next(md.disasm(image[pc - base : pc - base + size], pc, 1))
                    branch = branch_of[mnem] = any(g in _BRANCH_GROUPS for g in insn.groups)
                t = text_ops(mnem, ops, branch, ())
            yield pc, size, t

    def text(self, insn) -> str:
        ops = insn.op_str
        imms = []
        if "$" in ops:
            for o in insn.operands:
                if o.type == self.imm_type:
                    v = o.imm
                    if o.size == 1 and v >= 0x80 and v < 0x100:
                        v -= 0x100
                    imms.append(v)
        return self.text_ops(insn.mnemonic, ops, any(g in _BRANCH_GROUPS for g in insn.groups), imms)

    def text_ops(self, mnemonic: str, ops: str, branch: bool, imms) -> str:
        """LLVM's text from capstone's mnemonic and operands (``imms``: the immediates' values)."""
        if "$" in ops:
            it = iter(imms)

            def imm(m):
                v = next(it, None)
                if v is None:
                    v = int(m.group(1), 0)
                return f"${v}"

            ops = _IMM.sub(imm, ops)
        if "(" in ops:
            ops = _DISP.sub(lambda m: str(int(m.group(1), 0)), ops)
            ops = _PARENS.sub(lambda m: "(" + m.group(1).replace(", ", ",") + ")", ops)
        if "*" in ops:
            ops = _STAR.sub(lambda m: "*" + str(int(m.group(1), 0)), ops)
        if not branch and "0x" in ops:
            ops = _BARE.sub(lambda m: str(int(m.group(1), 0)), ops)
        buf = f"\t{mnemonic}\t{ops}" if ops else f"\t{mnemonic}"
        comments = [_imm_comment(v) for v in imms if v > 255 or v < -256]
        if comments:
            pad = max(40 - _col(buf), 1)
            buf += " " * pad + "# " + comments[0]
            for c in comments[1:]:
                buf += "\n" + " " * 40 + "# " + c
        return buf


# --- arm64: capstone -> LLVM (decimal immediates, branch targets as hex addresses)

_A64_HASH = re.compile(r"#(-?0x[0-9a-f]+)")


class Arm64Formatter:
    def __init__(self, cs):
        arch = getattr(cs, "CS_ARCH_ARM64", None)
        if arch is None:
            arch = cs.CS_ARCH_AARCH64
        md = cs.Cs(arch, cs.CS_MODE_ARM)
        md.detail = True
        self.md = md

    def text(self, insn) -> str:
        ops = insn.op_str
        branch = any(g in _BRANCH_GROUPS for g in insn.groups)
        if branch:
            # the last operand of a direct branch is its target: LLVM prints 0x<address>
            ops = re.sub(r"#(0x[0-9a-f]+)$", r"\1", ops)
        ops = _A64_HASH.sub(lambda m: "#" + str(int(m.group(1), 0)), ops)
        return f"\t{insn.mnemonic}\t{ops}" if ops else f"\t{insn.mnemonic}"


def formatter_for(machine: str | None = None):
    cs = _capstone()
    machine = machine or platform.machine()
    if machine in ("x86_64", "amd64"):
        return X86Formatter(cs)
    if machine in ("aarch64", "arm64"):
        return Arm64Formatter(cs)
    raise BpftError(f"no JIT disassembler for {machine}")


def disasm_lines(fmt, image: bytes) -> list[tuple[int, int, str]]:
    """(pc, length, LLVM-style text) for each instruction; a final (pc, 0, '') where decoding stops."""
    out = []
    pc = 0
    n = len(image)
    lines = getattr(fmt, "lines", None)
    while pc < n:
        got = False
        if lines is not None:
            for addr, size, text in lines(image[pc:], pc):
                out.append((addr, size, text))
                got = True
            if got:
                pc = out[-1][0] + out[-1][1]
        else:
            for insn in fmt.md.disasm(image[pc:], pc):
                out.append((insn.address, insn.size, fmt.text(insn)))
                pc = insn.address + insn.size
                got = True
        if pc < n:
            out.append((pc, 0, ""))  # LLVMDisasmInstruction() failed: bpftool stops here
            break
        if not got:
            break
    return out


def _json_ops(buf: str) -> tuple[str, list]:
    """bpftool's printf_json(): strtok(" \\t") for the operation, then " \\t,()"."""
    toks = [t for t in re.split(r"[ \t]+", buf.lstrip(" \t"), maxsplit=1)]
    op = toks[0] if toks else ""
    rest = toks[1] if len(toks) > 1 else ""
    operands = [t for t in re.split(r"[ \t,()]+", rest) if t]
    return op, operands


def _insns(dumper, image: bytes, fmt, btf, linfo, func_ksym: int, func_idx: int, json: bool, depth: int, pretty: bool):
    """disasm_print_insn(): one function's instructions, plain text or a JSON array."""
    lines = disasm_lines(fmt, image)
    opcodes, linum = dumper.opcodes, dumper.linum
    nr_skip = 0
    parts: list[str] = []
    for pc, count, buf in lines:
        rec = None
        if linfo is not None and linfo.jited:
            rec = linfo.lfind_addr_func(func_ksym + pc, func_idx, nr_skip)
            if rec is not None:
                nr_skip += 1
        if json:
            obj: dict = {}
            if rec is not None:
                for k, v in linfo_json(btf, rec, linum):
                    obj[k] = v
            obj["pc"] = RawJson(f'"0x{pc:x}"')
            op, operands = _json_ops(buf)
            obj["operation"] = op
            obj["operands"] = operands if operands else [None]
            if opcodes:
                obj["opcodes"] = [RawJson(f'"0x{b:02x}"') for b in image[pc : pc + count]]
            parts.append(_render(obj, depth + 1, pretty))
        else:
            if rec is not None:
                parts.append(linfo_plain(btf, rec, "; ", linum))
            parts.append(f"{pc:4x}:{buf}")
            if opcodes:
                parts.append("\n\t" + "".join(f"{b:02x} " for b in image[pc : pc + count]))
            parts.append("\n")
        if count <= 0:
            break
    if json:
        if not parts:
            return "[]"
        return "[" + ",".join(parts) + (("\n" + "    " * depth + "]") if pretty else "]")
    return "".join(parts)


def dump_jited(dumper, info, arrays, image: bytes, btf, linfo) -> None:
    if info.ifindex:
        raise BpftError("offloaded programs: no disassembler for the device's JIT image")
    fmt = formatter_for()
    json = dumper.json
    w = dumper.ctx.emitter.writer if json else None
    out = dumper.out
    lens = arrays.jited_func_lens
    if info.nr_jited_func_lens and lens:
        ksyms_addrs = arrays.jited_ksyms
        syms = dumper.ksyms() if info.nr_jited_ksyms else None
        from bpft.btf import type_signature

        funcs = []
        if btf is not None and arrays.func_info and info.func_info_rec_size >= 8:
            import struct

            rs = info.func_info_rec_size
            funcs = [
                struct.unpack_from("<I", arrays.func_info, k * rs + 4)[0] for k in range(len(arrays.func_info) // rs)
            ]
        if w is not None:
            w.start_array()
        off = 0
        for i, flen in enumerate(lens):
            ksym = ksyms_addrs[i] if i < len(ksyms_addrs) else 0
            if syms is not None:
                name = syms.find(ksym) or f"0x{ksym:016x}"
            else:
                name = "unknown"
            sig = type_signature(btf, funcs[i]) if i < len(funcs) else ""
            body = image[off : off + flen]
            off += flen
            if not body:
                raise SilentFailureJited()
            if w is not None:
                w.start_object()
                if sig:
                    w.name("proto")
                    w.raw(json_quote(sig))
                w.name("name")
                w.raw(json_quote(name))
                w.name("insns")
                w.raw(_insns(dumper, body, fmt, btf, linfo, ksym, i, True, w.depth, w.pretty))
                w.end_object()
            else:
                head = (f"{sig}:\n" if sig else "") + f"{name}:\n"
                out.write(head + _insns(dumper, body, fmt, btf, linfo, ksym, i, False, 0, False) + "\n")
        if w is not None:
            w.end_array()
    else:
        if w is not None:
            w.raw(_insns(dumper, image, fmt, btf, None, 0, 0, True, w.depth, w.pretty))
        else:
            out.write(_insns(dumper, image, fmt, btf, None, 0, 0, False, 0, False))


class SilentFailureJited(BpftError):
    def __init__(self):
        super().__init__("")
