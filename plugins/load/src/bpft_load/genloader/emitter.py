"""The loader program's writer: libbpf 1.1's generator (``gen_loader.c``), step by step.

A :class:`LoaderEmitter` grows two buffers as the load phase calls it:

* ``data``, the blob: every ``union bpf_attr`` the loader passes to bpf(), the BTF,
  the programs' instructions, func/line info and CO-RE records, map initial values
  and symbol names, each padded to 8 bytes. It starts with the ``fd_array`` (one
  slot per map, then one per kfunc BTF). At run time the blob is the value of the
  loader's only map, so the program reaches it with ``ld_imm64`` of
  ``BPF_PSEUDO_MAP_IDX_VALUE`` 0 plus an offset.
* ``insns``: the program. It saves the context in R6, zeroes its stack and jumps over
  the cleanup code, which every failed step jumps back to: it closes every fd made so
  far and returns the failing call's result. Then one block per step: fill the
  attr's pointers and the values the context gives (log level and buffer, map sizes,
  initial values), call ``bpf_sys_bpf``, check the result, keep the fd (maps' in the
  fd_array, programs' and the BTF's on the stack). At the end it closes the BTF fd,
  copies the fds into the context's map and program descriptors and returns 0.

The emitter never calls the kernel. ``error`` holds the first failure (a negative
errno), as libbpf's ``gen->error``: the load phase reports it at :meth:`finish`.
libbpf's debug variant (``trace_printk`` after each step) is for a log level that
bpf_object__load never passes in libbpf 1.1, so it is not written here.
"""

from __future__ import annotations

import errno
import struct

from bpft.insn import (
    BPF_ADD,
    BPF_AND,
    BPF_B,
    BPF_DW,
    BPF_H,
    BPF_JA,
    BPF_JEQ,
    BPF_JNE,
    BPF_JSET,
    BPF_JSGE,
    BPF_JSLE,
    BPF_JSLT,
    BPF_PSEUDO_MAP_IDX_VALUE,
    BPF_RSH,
    BPF_W,
    Insn,
    alu32_imm,
    alu64_imm,
    call_helper,
    exit_insn,
    jmp_imm,
    ld_imm64,
    ldx_mem,
    mov64_imm,
    mov64_reg,
    st_mem,
    stx_mem,
)
from bpft.kernel.uapi import MAP_IN_MAP_TYPES

from ..log import Log
from .layout import (
    ATTACH_TARGET_SIZE,
    BPF_SKEL_KERNEL,
    CORE_RELO_SIZE,
    INSN,
    MAX_FD_ARRAY_SZ,
    MAX_KFUNC_DESCS,
    MAX_USED_MAPS,
    STACK_BTF_FD,
    STACK_INNER_MAP_FD,
    STACK_SIZE,
    BtfKind,
    BtfLoadAttr,
    Cmd,
    Helper,
    LoaderCtx,
    MapCreateAttr,
    MapElemAttr,
    ProgLoadAttr,
    Reg,
    map_desc_off,
    prog_desc_off,
    stack_prog_fd,
)

_SIZE_CODE = {8: BPF_DW, 4: BPF_W, 2: BPF_H, 1: BPF_B}
_OFF_IMM, _OFF_OFF, _OFF_REGS = 4, 2, 1  # byte offsets of imm, off and the registers in an insn


class KsymRelo:
    """An instruction of the program being loaded that refers to a kernel symbol
    (libbpf's ksym_relo_desc): a ``__ksym`` variable or a kfunc."""

    __slots__ = ("name", "is_weak", "is_typeless", "kind", "insn_idx")

    def __init__(self, name: str, is_weak: bool, is_typeless: bool, kind: BtfKind, insn_idx: int):
        self.name, self.is_weak, self.is_typeless = name, is_weak, is_typeless
        self.kind, self.insn_idx = kind, insn_idx


class _Ksym:
    """One kernel symbol among the current program's relocations (libbpf's ksym_desc):
    looked up once, its later uses copy the first instruction's result."""

    __slots__ = ("name", "kind", "ref", "off", "insn", "typeless")

    def __init__(self, name: str, kind: BtfKind):
        self.name, self.kind = name, kind
        self.ref, self.off, self.insn, self.typeless = 1, 0, 0, False


class LoaderEmitter:
    """The loader program and its blob, built by the load phase's calls (in libbpf's
    order). ``log`` takes libbpf's ``gen: ...`` debug lines."""

    def __init__(self, log: Log):
        self.log = log
        self.insns = bytearray()
        self.data = bytearray()
        self.error = 0
        self.fd_array = 0
        self.cleanup_label = 0
        self.nr_maps = 0  # maps created so far: each has the fd_array slot of its index
        self.nr_progs = 0  # programs loaded so far: each has a stack slot
        self.nr_fd_array = 0  # kfunc BTF fds in the fd_array, after the maps'
        self.attach_kind = 0
        self.attach_target = ""
        self.relos: list[KsymRelo] = []  # of the program about to be loaded
        self.core_relos: list[bytes] = []  # of the program about to be loaded
        self.ksyms: list[_Ksym] = []

    # --- buffers
    def _emit(self, *parts: list[Insn]) -> None:
        for part in parts:
            for insn in part:
                self.insns += insn.encode()

    def _here(self) -> int:
        return len(self.insns)

    def add_data(self, data: bytes | None, size: int | None = None) -> int:
        """Append ``data`` (or ``size`` zero bytes) to the blob, padded to 8 bytes; its offset."""
        if size is None:
            size = len(data or b"")
        off = len(self.data)
        self.data += (data or b"")[:size].ljust(-(-size // 8) * 8, b"\0")
        return off

    def _fd_slot(self, index: int) -> int:
        return self.fd_array + index * 4

    # --- instruction patterns
    @staticmethod
    def _blob(reg: int, off: int) -> list[Insn]:
        """``reg`` = the address of byte ``off`` of the blob."""
        return ld_imm64(reg, off << 32, BPF_PSEUDO_MAP_IDX_VALUE)

    def _rel_store(self, off: int, data_off: int) -> None:
        """``*(u64 *)(blob + off) = blob + data_off``: a pointer field of an attr."""
        self._emit(self._blob(Reg.R0, data_off), self._blob(Reg.R1, off), stx_mem(BPF_DW, Reg.R1, Reg.R0, 0))

    def _move_blob2blob(self, off: int, size: int, blob_off: int) -> None:
        self._emit(
            self._blob(Reg.R2, blob_off),
            ldx_mem(_SIZE_CODE[size], Reg.R0, Reg.R2, 0),
            self._blob(Reg.R1, off),
            stx_mem(_SIZE_CODE[size], Reg.R1, Reg.R0, 0),
        )

    def _move_blob2ctx(self, ctx_off: int, size: int, blob_off: int) -> None:
        self._emit(
            self._blob(Reg.R1, blob_off),
            ldx_mem(_SIZE_CODE[size], Reg.R0, Reg.R1, 0),
            stx_mem(_SIZE_CODE[size], Reg.CTX, Reg.R0, ctx_off),
        )

    def _move_ctx2blob(self, off: int, size: int, ctx_off: int, keep_if_zero: bool = False) -> None:
        """Copy a context field into the blob; with ``keep_if_zero``, a zero in the
        context leaves the blob's value (the object's max_entries) as it is."""
        self._emit(ldx_mem(_SIZE_CODE[size], Reg.R0, Reg.CTX, ctx_off))
        if keep_if_zero:
            self._emit(jmp_imm(BPF_JEQ, Reg.R0, 0, 3))
        self._emit(self._blob(Reg.R1, off), stx_mem(_SIZE_CODE[size], Reg.R1, Reg.R0, 0))

    def _move_stack2blob(self, off: int, size: int, stack_off: int) -> None:
        self._emit(
            ldx_mem(_SIZE_CODE[size], Reg.R0, Reg.FP, stack_off),
            self._blob(Reg.R1, off),
            stx_mem(_SIZE_CODE[size], Reg.R1, Reg.R0, 0),
        )

    def _move_stack2ctx(self, ctx_off: int, size: int, stack_off: int) -> None:
        self._emit(
            ldx_mem(_SIZE_CODE[size], Reg.R0, Reg.FP, stack_off),
            stx_mem(_SIZE_CODE[size], Reg.CTX, Reg.R0, ctx_off),
        )

    def _sys_bpf(self, cmd: Cmd, attr: int, attr_size: int) -> None:
        """bpf(cmd, blob + attr, attr_size); the result in R7."""
        self._emit(
            mov64_imm(Reg.R1, cmd),
            self._blob(Reg.R2, attr),
            mov64_imm(Reg.R3, attr_size),
            call_helper(Helper.SYS_BPF),
            mov64_reg(Reg.RESULT, Reg.R0),
        )

    def _check_err(self) -> None:
        """``if (R7 < 0) goto cleanup``."""
        off = -(self._here() - self.cleanup_label) // INSN - 1
        if -(1 << 15) <= off < 1 << 15:
            self._emit(jmp_imm(BPF_JSLT, Reg.RESULT, 0, off))
        else:
            self.error = -errno.ERANGE
            self._emit(jmp_imm(BPF_JA, 0, 0, -1))

    def _sys_close_r1(self) -> None:
        self._emit(jmp_imm(BPF_JSLE, Reg.R1, 0, 2), mov64_reg(Reg.R9, Reg.R1), call_helper(Helper.SYS_CLOSE))

    def _sys_close_stack(self, stack_off: int) -> None:
        self._emit(ldx_mem(BPF_W, Reg.R1, Reg.FP, stack_off))
        self._sys_close_r1()

    def _sys_close_blob(self, blob_off: int) -> None:
        self._emit(self._blob(Reg.R0, blob_off), ldx_mem(BPF_W, Reg.R1, Reg.R0, 0))
        self._sys_close_r1()

    # --- the steps (bpf_gen__*)
    def init(self, nr_progs: int, nr_maps: int) -> None:
        """bpf_gen__init: the prologue and the cleanup code, for an object of ``nr_progs``
        programs (subprograms included, as libbpf counts them) and ``nr_maps`` maps."""
        self.fd_array = self.add_data(None, MAX_FD_ARRAY_SZ * 4)
        self._emit(
            mov64_reg(Reg.CTX, Reg.R1),
            mov64_reg(Reg.R1, Reg.FP),
            alu64_imm(BPF_ADD, Reg.R1, -STACK_SIZE),
            mov64_imm(Reg.R2, STACK_SIZE),
            mov64_imm(Reg.R3, 0),
            call_helper(Helper.PROBE_READ_KERNEL),  # zeroes the stack: it reads from NULL
        )
        stack_used = 8 + 4 * nr_progs  # the BTF and inner map fds, then the programs'
        self._emit(jmp_imm(BPF_JA, 0, 0, (stack_used // 4) * 3 + 2 + nr_maps * 6))
        self.cleanup_label = self._here()
        for i in range(0, stack_used, 4):
            self._emit(
                ldx_mem(BPF_W, Reg.R1, Reg.FP, -STACK_SIZE + i),
                jmp_imm(BPF_JSLE, Reg.R1, 0, 1),
                call_helper(Helper.SYS_CLOSE),
            )
        for i in range(nr_maps):
            self._sys_close_blob(self._fd_slot(i))
        self._emit(mov64_reg(Reg.R0, Reg.RESULT), exit_insn())

    def finish(self, nr_progs: int, nr_maps: int) -> int:
        """bpf_gen__finish: close the BTF, hand the fds to the context; the error (0 if none)."""
        if nr_progs < self.nr_progs or nr_maps != self.nr_maps:
            self.log.warn(f"nr_progs {nr_progs}/{self.nr_progs} nr_maps {nr_maps}/{self.nr_maps} mismatch")
            self.error = -errno.EFAULT
            return self.error
        self._sys_close_stack(STACK_BTF_FD)
        for i in range(self.nr_progs):
            self._move_stack2ctx(prog_desc_off(self.nr_maps, i) + LoaderCtx.PROG_DESC_FD, 4, stack_prog_fd(i))
        for i in range(self.nr_maps):
            self._move_blob2ctx(map_desc_off(i) + LoaderCtx.MAP_DESC_FD, 4, self._fd_slot(i))
        self._emit(mov64_imm(Reg.R0, 0), exit_insn())
        self.log.debug(f"gen: finish {self.error}")
        return self.error

    def load_btf(self, raw_btf: bytes) -> None:
        """bpf_gen__load_btf: BPF_BTF_LOAD with the context's log; the fd on the stack."""
        self.log.debug(f"gen: load_btf: size {len(raw_btf)}")
        btf_data = self.add_data(raw_btf)
        attr = bytearray(BtfLoadAttr.SIZEOF)
        struct.pack_into("<I", attr, BtfLoadAttr.SIZE, len(raw_btf))
        at = self.add_data(bytes(attr))
        self._move_ctx2blob(at + BtfLoadAttr.LOG_LEVEL, 4, LoaderCtx.LOG_LEVEL)
        self._move_ctx2blob(at + BtfLoadAttr.LOG_SIZE, 4, LoaderCtx.LOG_SIZE)
        self._move_ctx2blob(at + BtfLoadAttr.LOG_BUF, 8, LoaderCtx.LOG_BUF)
        self._rel_store(at + BtfLoadAttr.BTF, btf_data)
        self._sys_bpf(Cmd.BTF_LOAD, at, BtfLoadAttr.SIZEOF)
        self._check_err()
        self._emit(stx_mem(BPF_W, Reg.FP, Reg.RESULT, STACK_BTF_FD))

    def map_create(
        self,
        map_type: int,
        name: str | None,
        key_size: int,
        value_size: int,
        max_entries: int,
        *,
        map_flags: int = 0,
        map_extra: int = 0,
        numa_node: int = 0,
        ifindex: int = 0,
        btf_key_type_id: int = 0,
        btf_value_type_id: int = 0,
        map_idx: int,
    ) -> None:
        """bpf_gen__map_create: BPF_MAP_CREATE (``map_idx`` -1: the inner map of the
        map-in-map created next, kept on the stack until then)."""
        attr = bytearray(MapCreateAttr.SIZEOF)
        map_name = (name or "").encode()[:15]
        struct.pack_into("<IIIII", attr, 0, map_type, key_size, value_size, max_entries, map_flags)
        struct.pack_into("<I16sI", attr, MapCreateAttr.NUMA_NODE, numa_node, map_name, ifindex)
        struct.pack_into("<II", attr, MapCreateAttr.BTF_KEY_TYPE_ID, btf_key_type_id, btf_value_type_id)
        struct.pack_into("<Q", attr, MapCreateAttr.MAP_EXTRA, map_extra)
        shown = map_name.decode(errors="replace")
        self.log.debug(f"gen: map_create: {shown} idx {map_idx} type {map_type} value_type_id {btf_value_type_id}")
        at = self.add_data(bytes(attr))
        if btf_value_type_id:
            self._move_stack2blob(at + MapCreateAttr.BTF_FD, 4, STACK_BTF_FD)
        close_inner = map_type in MAP_IN_MAP_TYPES
        if close_inner:
            self._move_stack2blob(at + MapCreateAttr.INNER_MAP_FD, 4, STACK_INNER_MAP_FD)
        if map_idx >= 0:
            ctx_off = map_desc_off(map_idx) + LoaderCtx.MAP_DESC_MAX_ENTRIES
            self._move_ctx2blob(at + MapCreateAttr.MAX_ENTRIES, 4, ctx_off, keep_if_zero=True)
        self._sys_bpf(Cmd.MAP_CREATE, at, MapCreateAttr.SIZEOF)
        self._check_err()
        if map_idx < 0:
            self._emit(stx_mem(BPF_W, Reg.FP, Reg.RESULT, STACK_INNER_MAP_FD))
        elif map_idx != self.nr_maps:
            self.error = -errno.EDOM  # maps are created in index order
            return
        else:
            slot = self._add_map_fd()
            self._emit(self._blob(Reg.R1, self._fd_slot(slot)), stx_mem(BPF_W, Reg.R1, Reg.RESULT, 0))
        if close_inner:
            self._sys_close_stack(STACK_INNER_MAP_FD)

    def _add_map_fd(self) -> int:
        if self.nr_maps == MAX_USED_MAPS:
            self.log.warn(f"Total maps exceeds {MAX_USED_MAPS}")
            self.error = -errno.E2BIG
            return 0
        self.nr_maps += 1
        return self.nr_maps - 1

    def _add_kfunc_btf_fd(self) -> int:
        if self.nr_fd_array == MAX_KFUNC_DESCS:
            return (self.add_data(None, 4) - self.fd_array) // 4
        self.nr_fd_array += 1
        return MAX_USED_MAPS + self.nr_fd_array - 1

    def map_update_elem(self, map_idx: int, value: bytes) -> None:
        """bpf_gen__map_update_elem: a global data map's initial value (the context's
        own, copied in first, if the context gives one)."""
        self.log.debug(f"gen: map_update_elem: idx {map_idx}")
        value_off = self.add_data(value)
        key_off = self.add_data(bytes(4))
        self._emit(
            ldx_mem(BPF_DW, Reg.R3, Reg.CTX, map_desc_off(map_idx) + LoaderCtx.MAP_DESC_INITIAL_VALUE),
            jmp_imm(BPF_JEQ, Reg.R3, 0, 8),
            self._blob(Reg.R1, value_off),
            mov64_imm(Reg.R2, len(value)),
            ldx_mem(BPF_W, Reg.R0, Reg.CTX, LoaderCtx.FLAGS),
            jmp_imm(BPF_JSET, Reg.R0, BPF_SKEL_KERNEL, 2),
            call_helper(Helper.COPY_FROM_USER),
            jmp_imm(BPF_JA, 0, 0, 1),
            call_helper(Helper.PROBE_READ_KERNEL),
        )
        at = self.add_data(None, MapElemAttr.SIZEOF)
        self._move_blob2blob(at + MapElemAttr.MAP_FD, 4, self._fd_slot(map_idx))
        self._rel_store(at + MapElemAttr.KEY, key_off)
        self._rel_store(at + MapElemAttr.VALUE, value_off)
        self._sys_bpf(Cmd.MAP_UPDATE_ELEM, at, MapElemAttr.SIZEOF)
        self._check_err()

    def populate_outer_map(self, outer_map_idx: int, slot: int, inner_map_idx: int) -> None:
        """bpf_gen__populate_outer_map: slot ``slot`` of a map-in-map = an inner map's fd."""
        self.log.debug(f"gen: populate_outer_map: outer {outer_map_idx} key {slot} inner {inner_map_idx}")
        key_off = self.add_data(struct.pack("<i", slot))
        at = self.add_data(None, MapElemAttr.SIZEOF)
        self._move_blob2blob(at + MapElemAttr.MAP_FD, 4, self._fd_slot(outer_map_idx))
        self._rel_store(at + MapElemAttr.KEY, key_off)
        self._rel_store(at + MapElemAttr.VALUE, self._fd_slot(inner_map_idx))
        self._sys_bpf(Cmd.MAP_UPDATE_ELEM, at, MapElemAttr.SIZEOF)
        self._check_err()

    def map_freeze(self, map_idx: int) -> None:
        """bpf_gen__map_freeze: a read-only data map made read-only to user space."""
        self.log.debug(f"gen: map_freeze: idx {map_idx}")
        at = self.add_data(None, MapElemAttr.FREEZE_SIZEOF)
        self._move_blob2blob(at + MapElemAttr.MAP_FD, 4, self._fd_slot(map_idx))
        self._sys_bpf(Cmd.MAP_FREEZE, at, MapElemAttr.FREEZE_SIZEOF)
        self._check_err()

    def record_attach_target(self, target: str, kind: int) -> None:
        """bpf_gen__record_attach_target: the next program's kernel target (its name and
        BTF kind in the kernel's BTF: progload.kernel_target), looked up by the loader
        (bpf_btf_find_by_name_kind) when it loads the program."""
        self.attach_kind = kind
        if len(target.encode()) >= ATTACH_TARGET_SIZE:
            self.error = -errno.ENOSPC
            target = target.encode()[: ATTACH_TARGET_SIZE - 1].decode(errors="ignore")
        self.attach_target = target

    def record_extern(self, name: str, is_weak: bool, is_typeless: bool, kind: BtfKind, insn_idx: int) -> None:
        """bpf_gen__record_extern: an instruction of the next program that refers to a
        kernel variable or kfunc, resolved by the loader."""
        self.relos.append(KsymRelo(name, is_weak, is_typeless, kind, insn_idx))

    def record_relo_core(self, record: bytes) -> None:
        """bpf_gen__record_relo_core: a CO-RE relocation (struct bpf_core_relo) of the
        next program, which the kernel applies when it loads it."""
        self.core_relos.append(bytes(record))

    def prog_load(
        self,
        prog_type: int,
        name: str,
        license: str,
        insns: bytes,
        *,
        expected_attach_type: int = 0,
        attach_btf_id: int = 0,
        prog_ifindex: int = 0,
        prog_flags: int = 0,
        func_info: bytes = b"",
        func_info_rec_size: int = 0,
        line_info: bytes = b"",
        line_info_rec_size: int = 0,
        prog_idx: int,
    ) -> None:
        """bpf_gen__prog_load: BPF_PROG_LOAD of one program with its BTF, its recorded
        kernel symbols and CO-RE relocations, and its attach target."""
        insn_cnt = len(insns) // INSN
        self.log.debug(f"gen: prog_load: type {prog_type} insns_cnt {insn_cnt} progi_idx {prog_idx}")
        license_off = self.add_data(license.encode() + b"\0")
        insns_off = self.add_data(insns)
        func_info_cnt = len(func_info) // func_info_rec_size if func_info_rec_size else 0
        line_info_cnt = len(line_info) // line_info_rec_size if line_info_rec_size else 0
        func_info_off = self.add_data(func_info[: func_info_cnt * func_info_rec_size])
        line_info_off = self.add_data(line_info[: line_info_cnt * line_info_rec_size])
        core_off = self.add_data(b"".join(self.core_relos))
        attr = bytearray(ProgLoadAttr.SIZEOF)
        struct.pack_into("<II", attr, ProgLoadAttr.PROG_TYPE, prog_type, insn_cnt)
        struct.pack_into("<I", attr, ProgLoadAttr.PROG_FLAGS, prog_flags)
        struct.pack_into("<16sII", attr, ProgLoadAttr.PROG_NAME, name.encode()[:15], prog_ifindex, expected_attach_type)
        struct.pack_into("<I", attr, ProgLoadAttr.FUNC_INFO_REC_SIZE, func_info_rec_size)
        struct.pack_into("<I", attr, ProgLoadAttr.FUNC_INFO_CNT, func_info_cnt)
        struct.pack_into("<I", attr, ProgLoadAttr.LINE_INFO_REC_SIZE, line_info_rec_size)
        struct.pack_into("<I", attr, ProgLoadAttr.LINE_INFO_CNT, line_info_cnt)
        struct.pack_into("<I", attr, ProgLoadAttr.ATTACH_BTF_ID, attach_btf_id)
        struct.pack_into("<I", attr, ProgLoadAttr.CORE_RELO_CNT, len(self.core_relos))
        struct.pack_into("<I", attr, ProgLoadAttr.CORE_RELO_REC_SIZE, CORE_RELO_SIZE)
        at = self.add_data(bytes(attr))
        self._rel_store(at + ProgLoadAttr.LICENSE, license_off)
        self._rel_store(at + ProgLoadAttr.INSNS, insns_off)
        self._rel_store(at + ProgLoadAttr.FUNC_INFO, func_info_off)
        self._rel_store(at + ProgLoadAttr.LINE_INFO, line_info_off)
        self._rel_store(at + ProgLoadAttr.CORE_RELOS, core_off)
        self._rel_store(at + ProgLoadAttr.FD_ARRAY, self.fd_array)
        self._move_ctx2blob(at + ProgLoadAttr.LOG_LEVEL, 4, LoaderCtx.LOG_LEVEL)
        self._move_ctx2blob(at + ProgLoadAttr.LOG_SIZE, 4, LoaderCtx.LOG_SIZE)
        self._move_ctx2blob(at + ProgLoadAttr.LOG_BUF, 8, LoaderCtx.LOG_BUF)
        self._move_stack2blob(at + ProgLoadAttr.PROG_BTF_FD, 4, STACK_BTF_FD)
        if self.attach_kind:
            self._find_attach_target()
            # the BTF id is R7's lower half, the BTF object's fd its upper half
            self._emit(
                self._blob(Reg.R0, at),
                stx_mem(BPF_W, Reg.R0, Reg.RESULT, ProgLoadAttr.ATTACH_BTF_ID),
                alu64_imm(BPF_RSH, Reg.RESULT, 32),
                stx_mem(BPF_W, Reg.R0, Reg.RESULT, ProgLoadAttr.ATTACH_BTF_OBJ_FD),
            )
        for relo in self.relos:
            self._emit_relo(relo, insns_off)
        self._sys_bpf(Cmd.PROG_LOAD, at, ProgLoadAttr.SIZEOF)
        self._cleanup_relos()  # loaded or not, the BTF objects' fds are closed
        if self.attach_kind:
            self._sys_close_blob(at + ProgLoadAttr.ATTACH_BTF_OBJ_FD)
            self.attach_kind = 0
        self._check_err()
        self._emit(stx_mem(BPF_W, Reg.FP, Reg.RESULT, stack_prog_fd(self.nr_progs)))
        self.nr_progs += 1

    # --- kernel symbols
    def _find_attach_target(self) -> None:
        self.log.debug(f"gen: find_attach_tgt {self.attach_target} {self.attach_kind}")
        self._find_by_name_kind(self.attach_target, self.attach_kind)
        self._check_err()

    def _find_by_name_kind(self, name: str, kind: int) -> None:
        """R7 = bpf_btf_find_by_name_kind(name, kind): the BTF id, and the module BTF's fd
        in the upper half."""
        raw = name.encode() + b"\0"
        name_off = self.add_data(raw)
        self._emit(
            self._blob(Reg.R1, name_off),
            mov64_imm(Reg.R2, len(raw)),
            mov64_imm(Reg.R3, kind),
            mov64_imm(Reg.R4, 0),
            call_helper(Helper.BTF_FIND_BY_NAME_KIND),
            mov64_reg(Reg.RESULT, Reg.R0),
        )

    def _kallsyms_lookup_name(self, name: str) -> None:
        """R7 = bpf_kallsyms_lookup_name(name, 0, &res); R9 = res (the address)."""
        raw = name.encode() + b"\0"
        name_off = self.add_data(raw)
        res_off = self.add_data(None, 8)
        self._emit(
            self._blob(Reg.R1, name_off),
            mov64_imm(Reg.R2, len(raw)),
            mov64_imm(Reg.R3, 0),
            self._blob(Reg.R4, res_off),
            mov64_reg(Reg.RESULT, Reg.R4),
            call_helper(Helper.KALLSYMS_LOOKUP_NAME),
            ldx_mem(BPF_DW, Reg.R9, Reg.RESULT, 0),
            mov64_reg(Reg.RESULT, Reg.R0),
        )

    def _ksym(self, relo: KsymRelo) -> _Ksym:
        for k in self.ksyms:
            if k.name == relo.name:
                k.ref += 1
                return k
        k = _Ksym(relo.name, relo.kind)
        self.ksyms.append(k)
        return k

    def _emit_relo(self, relo: KsymRelo, insns_off: int) -> None:
        self.log.debug(f"gen: emit_relo ({relo.kind}): {relo.name} at {relo.insn_idx}")
        insn = insns_off + INSN * relo.insn_idx
        self._emit(self._blob(Reg.INSN, insn))
        if relo.kind == BtfKind.VAR:
            if relo.is_typeless:
                self._relo_ksym_typeless(relo, insn)
            else:
                self._relo_ksym_btf(relo, insn)
        elif relo.kind == BtfKind.FUNC:
            self._relo_kfunc_btf(relo, insn)
        else:
            self.log.warn(f"Unknown relocation kind '{relo.kind}'")
            self.error = -errno.EDOM

    def _copy_imm(self, insn: int, first: int, second_off: int, size: int = 4) -> None:
        """Copy a field of an earlier instruction of the same symbol into this one."""
        self._move_blob2blob(insn + second_off, size, first + second_off)

    def _relo_kfunc_btf(self, relo: KsymRelo, insn: int) -> None:
        """A kfunc call: the callee's BTF id into imm and, for a module's kfunc, the
        module BTF's fd into a fd_array slot whose index goes into off."""
        k = self._ksym(relo)
        if k.ref > 1:
            self._copy_imm(insn, k.insn, _OFF_IMM)
            self._copy_imm(insn, k.insn, _OFF_OFF, 2)
            return
        k.insn = insn
        self._find_by_name_kind(relo.name, relo.kind)
        if not relo.is_weak:
            self._check_err()
        btf_fd_idx = self._add_kfunc_btf_fd()
        if btf_fd_idx > 0x7FFF:
            self.log.warn(f"BTF fd off {btf_fd_idx} for kfunc {relo.name} exceeds INT16_MAX, cannot process relocation")
            self.error = -errno.E2BIG
            return
        k.off = btf_fd_idx
        self._emit(
            jmp_imm(BPF_JSGE, Reg.RESULT, 0, 3),
            st_mem(BPF_W, Reg.INSN, _OFF_IMM, 0),  # not found (a weak kfunc): imm = off = 0
            st_mem(BPF_H, Reg.INSN, _OFF_OFF, 0),
            jmp_imm(BPF_JA, 0, 0, 10),
            stx_mem(BPF_W, Reg.INSN, Reg.RESULT, _OFF_IMM),
            mov64_reg(Reg.R9, Reg.RESULT),
            alu64_imm(BPF_RSH, Reg.R9, 32),
            jmp_imm(BPF_JNE, Reg.R9, 0, 2),
            st_mem(BPF_H, Reg.INSN, _OFF_OFF, 0),  # vmlinux's BTF: off 0, no fd
            jmp_imm(BPF_JA, 0, 0, 4),
            self._blob(Reg.R0, self._fd_slot(btf_fd_idx)),
            stx_mem(BPF_W, Reg.R0, Reg.R9, 0),
            st_mem(BPF_H, Reg.INSN, _OFF_OFF, btf_fd_idx),
        )

    def _relo_ksym_typeless(self, relo: KsymRelo, insn: int) -> None:
        """A typeless ``__ksym``: its kallsyms address into the ld_imm64's two imms."""
        k = self._ksym(relo)
        if k.ref > 1:
            self._copy_imm(insn, k.insn, _OFF_IMM)
            self._copy_imm(insn, k.insn, INSN + _OFF_IMM)
            return
        k.insn = insn
        k.typeless = True
        self._kallsyms_lookup_name(relo.name)
        self._emit(jmp_imm(BPF_JEQ, Reg.RESULT, -errno.ENOENT, 1))
        self._check_err()
        self._emit(
            stx_mem(BPF_W, Reg.INSN, Reg.R9, _OFF_IMM),
            alu64_imm(BPF_RSH, Reg.R9, 32),
            stx_mem(BPF_W, Reg.INSN, Reg.R9, INSN + _OFF_IMM),
        )

    def _relo_ksym_btf(self, relo: KsymRelo, insn: int) -> None:
        """A typed ``__ksym``: its BTF id and BTF object fd into the ld_imm64's imms; not
        found (weak), the ld_imm64 becomes a plain 0. As bpftool 7.1's libbpf writes it,
        which has libbpf's later fix of the repeated-symbol copy (fd first, then the id
        that the src_reg test reads)."""
        k = self._ksym(relo)
        if k.ref > 1:
            self._copy_imm(insn, k.insn, INSN + _OFF_IMM)
            self._copy_imm(insn, k.insn, _OFF_IMM)
            self._emit(jmp_imm(BPF_JNE, Reg.R0, 0, 3))  # R0: the BTF id just copied; 0: not found
        else:
            k.insn = insn
            self._find_by_name_kind(relo.name, relo.kind)
            if not relo.is_weak:
                self._check_err()
            self._emit(
                jmp_imm(BPF_JSGE, Reg.RESULT, 0, 3),
                st_mem(BPF_W, Reg.INSN, _OFF_IMM, 0),
                st_mem(BPF_W, Reg.INSN, INSN + _OFF_IMM, 0),
                jmp_imm(BPF_JA, 0, 0, 4),
                stx_mem(BPF_W, Reg.INSN, Reg.RESULT, _OFF_IMM),
                alu64_imm(BPF_RSH, Reg.RESULT, 32),
                stx_mem(BPF_W, Reg.INSN, Reg.RESULT, INSN + _OFF_IMM),
                jmp_imm(BPF_JA, 0, 0, 3),  # found: keep the src_reg
            )
        # clear the src_reg (BPF_PSEUDO_BTF_ID) the relocation set: a plain ld_imm64 of 0
        self._emit(
            ldx_mem(BPF_B, Reg.R9, Reg.INSN, _OFF_REGS),
            alu32_imm(BPF_AND, Reg.R9, 0x0F),
            stx_mem(BPF_B, Reg.INSN, Reg.R9, _OFF_REGS),
        )

    def _cleanup_relos(self) -> None:
        """After a program's load: close the BTF object fds its symbols took; forget them."""
        for k in self.ksyms:
            if k.kind == BtfKind.VAR and not k.typeless:
                self._sys_close_blob(k.insn + INSN + _OFF_IMM)
            elif k.kind == BtfKind.FUNC:
                self._sys_close_blob(self._fd_slot(k.off))
                if k.off < MAX_FD_ARRAY_SZ:
                    self.nr_fd_array -= 1
        self.ksyms = []
        self.relos = []
        self.core_relos = []
