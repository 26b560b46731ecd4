"""The load step "init struct_ops": libbpf 1.1's bpf_map__init_kern_struct_ops for each
``.struct_ops`` map, against the running kernel's BTF: the kernel's struct and value
struct, the map's value size, and each member program's attach BTF id and expected
attach type (the member's index in the kernel struct). bpftool prog load creates
these maps but never registers them.
"""

from __future__ import annotations

from bpft import btf as B
from bpft.kernel.uapi import MapType

from .log import Log
from .model import ObjectModel
from .vmlinux import kernel_btf

_VALUE_PREFIX = "bpf_struct_ops_"


def _size(btf, tid: int) -> int:
    """btf__resolve_size(): the type's size, -1 when it has none."""
    try:
        return btf.size(tid)
    except B.BTFError:
        return -1


def init_kern_struct_ops(obj: ObjectModel, log: Log) -> None:
    """libbpf's bpf_map__init_kern_struct_ops() for every struct_ops map: the kernel's
    struct and value struct, the value size, and each program's attach_btf_id and
    expected_attach_type (the kernel member's index)."""
    for m in obj.map_list:
        if m.map_type != MapType.STRUCT_OPS:
            continue
        btf = obj.btf.btf
        try:
            vmlinux_btf = kernel_btf()
        except (OSError, B.BTFError) as e:
            raise log.load_error(f"struct_ops init_kern {m.name}: cannot read kernel BTF: {e}", map=m.name) from None
        kernel_type_id = vmlinux_btf.find(m.struct_name, B.STRUCT)
        if not kernel_type_id:
            raise log.load_error(f"struct_ops init_kern: struct {m.struct_name} is not found in kernel BTF")
        kernel_value_type_id = vmlinux_btf.find(_VALUE_PREFIX + m.struct_name, B.STRUCT)
        if not kernel_value_type_id:
            raise log.load_error(
                f"struct_ops init_kern: struct {_VALUE_PREFIX}{m.struct_name} is not found in kernel BTF"
            )
        kernel_type, kernel_value_type = vmlinux_btf.type(kernel_type_id), vmlinux_btf.type(kernel_value_type_id)
        kernel_data_member = next((mem for mem in kernel_value_type.members if mem[1] == kernel_type_id), None)
        if kernel_data_member is None:
            raise log.load_error(
                f"struct_ops init_kern: struct {m.struct_name} data is not found in struct "
                f"{_VALUE_PREFIX}{m.struct_name}"
            )
        log.debug(
            f"struct_ops init_kern {m.name}: type_id:{m.struct_type_id} kern_type_id:{kernel_type_id} kern_vtype_id:{kernel_value_type_id}"
        )
        m.value_size = kernel_value_type.size_or_type
        m.vmlinux_value_type_id = kernel_value_type_id
        kernel_members = {vmlinux_btf.name(mem[0]): j for j, mem in enumerate(kernel_type.members)}
        for i, (name_off, member_type_id, bit_offset, bitfield_size) in enumerate(btf.type(m.struct_type_id).members):
            member_name = btf.name(name_off)
            kernel_idx = kernel_members.get(member_name)
            if kernel_idx is None:
                raise log.load_error(f"struct_ops init_kern {m.name}: Cannot find member {member_name} in kernel BTF")
            _kernel_name_off, kernel_member_type_id, kernel_bit_offset, kernel_bitfield_size = kernel_type.members[
                kernel_idx
            ]
            if bitfield_size or kernel_bitfield_size:
                raise log.load_error(f"struct_ops init_kern {m.name}: bitfield {member_name} is not supported")
            local_member_type, kernel_member_type = (
                btf.resolve(member_type_id),
                vmlinux_btf.resolve(kernel_member_type_id),
            )
            local_kind = btf.type(local_member_type).kind if local_member_type else B.UNKN
            kernel_kind = vmlinux_btf.type(kernel_member_type).kind if kernel_member_type else B.UNKN
            if local_kind != kernel_kind:
                raise log.load_error(
                    f"struct_ops init_kern {m.name}: Unmatched member type {member_name} {local_kind} != {kernel_kind}(kernel)"
                )
            if local_kind == B.PTR:
                prog = m.struct_progs.get(i)
                if prog is None:
                    continue
                kernel_func = vmlinux_btf.resolve(vmlinux_btf.type(kernel_member_type).size_or_type)
                if not kernel_func or vmlinux_btf.type(kernel_func).kind != B.FUNC_PROTO:
                    raise log.load_error(
                        f"struct_ops init_kern {m.name}: kernel member {member_name} is not a func ptr"
                    )
                prog.attach_btf_id, prog.attach_type = kernel_type_id, kernel_idx
                log.debug(
                    f"struct_ops init_kern {m.name}: func ptr {member_name} is set to prog {prog.name} "
                    f"from data(+{bit_offset // 8}) to kern_data(+{kernel_bit_offset // 8})"
                )
                continue
            member_size, kernel_member_size = _size(btf, member_type_id), _size(vmlinux_btf, kernel_member_type_id)
            if member_size < 0 or kernel_member_size < 0 or member_size != kernel_member_size:
                raise log.load_error(
                    f"struct_ops init_kern {m.name}: Error in size of member {member_name}: {member_size} != {kernel_member_size}(kernel)"
                )
            log.debug(
                f"struct_ops init_kern {m.name}: copy {member_name} {member_size} bytes from data(+{bit_offset // 8}) "
                f"to kern_data(+{kernel_bit_offset // 8})"
            )
