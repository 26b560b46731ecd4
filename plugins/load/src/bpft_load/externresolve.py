"""The load step "resolve externs": each .kconfig value from the running kernel's config
(and the virtual LINUX_* ones), each .ksyms symbol from the kernel's BTF or kallsyms,
as libbpf 1.1's bpf_object__resolve_externs does.
"""

from __future__ import annotations

import errno
import os
import struct

from bpft import btf as B

from .log import Log
from .model import Extern, ExternKind, ObjectModel


class _Kconfig:
    """``CONFIG_X=value`` lines, looked up by name (the last line of a name wins)."""

    def __init__(self, text: str):
        self.text = "\n" + text

    def get(self, name: str) -> str | None:
        i = self.text.rfind(f"\n{name}=")
        if i < 0:
            return None
        i += len(name) + 2
        j = self.text.find("\n", i)
        return self.text[i : j if j >= 0 else None].rstrip("\r")


def _read_kconfig() -> _Kconfig | None:
    """The running kernel's config (/boot/config-RELEASE, else /proc/config.gz), as libbpf reads it.

    Only the names a program asks for are looked up: parsing every line of a
    100 KB config costs milliseconds.
    """
    import zlib

    rel = os.uname().release
    for path in (f"/boot/config-{rel}", "/proc/config.gz"):
        try:
            with open(path, "rb") as f:
                raw = f.read()
            if path.endswith(".gz"):
                raw = zlib.decompress(raw, 16 + zlib.MAX_WBITS)
        except (OSError, zlib.error):
            continue
        return _Kconfig(raw.decode(errors="replace"))
    return None


def _kernel_version() -> int:
    rel = os.uname().release
    parts = []
    for p in rel.split(".")[:3]:
        digits = ""
        for c in p:
            if not c.isdigit():
                break
            digits += c
        parts.append(int(digits or 0))
    while len(parts) < 3:
        parts.append(0)
    return (parts[0] << 16) | (parts[1] << 8) | min(parts[2], 255)


def resolve_externs(obj: ObjectModel, log: Log, *, kernel_btf: bool = True) -> None:
    """Fill each extern's value (kconfig data, addresses, kernel BTF ids). Without
    ``kernel_btf`` (a generated loader, which looks them up when it runs), typed ksyms
    and kfuncs are marked set with BTF id 0, as libbpf does when it generates."""
    if not obj.externs:
        return
    kconfigs = [e for e in obj.externs if e.kind == ExternKind.KCONFIG]
    if kconfigs:
        m = obj.map_list[obj.kconfig_map_idx]
        data = m.data
        assert isinstance(data, bytearray), "mapdefs gives the .kconfig map a zeroed bytearray to fill"
        from_config = []  # read from the kernel's config once the virtual ones are set
        for e in kconfigs:
            if e.name == "LINUX_KERNEL_VERSION":
                struct.pack_into("<I", data, e.data_off, _kernel_version())
                e.is_set = True
                log.debug(f"extern (kcfg) '{e.name}': set to 0x{_kernel_version():x}")
            elif e.name == "LINUX_HAS_BPF_COOKIE" or e.name == "LINUX_HAS_SYSCALL_WRAPPER":
                data[e.data_off] = 1
                e.is_set = True
                log.debug(f"extern (kcfg) '{e.name}': set to 0x1")
            elif e.name.startswith("CONFIG_"):
                from_config.append(e)
            else:
                raise log.load_error(f"extern (kcfg) '{e.name}': unrecognized virtual extern", errno=errno.EINVAL)
        from_file = []  # libbpf reports these in the config file's order
        if from_config:
            cfg = _read_kconfig()
            if cfg is None:
                raise log.load_error("failed to open system Kconfig", errno=errno.EINVAL)
            for e in from_config:
                v = cfg.get(e.name)
                if v is not None:
                    _set_kcfg(e, data, v, log)
                    from_file.append((cfg.text.rfind(f"\n{e.name}="), f"extern (kcfg) '{e.name}': set to {v}"))
        for _pos, line in sorted(from_file):
            log.debug(line)
    ksyms = [e for e in obj.externs if e.kind == ExternKind.KSYM]
    typeless = {e.name: e for e in ksyms if not (e.is_func or e.type_id)}
    if typeless:  # in /proc/kallsyms' order, as libbpf reads it
        from .vmlinux import kallsyms

        for name, addr in kallsyms().items():
            found = typeless.get(name)
            if found is not None:
                found.addr, found.is_set = addr, True
                log.debug(f"extern (ksym) '{name}': set to 0x{addr:x}")
    typed = [e for e in ksyms if e.is_func or e.type_id]
    if typed and not kernel_btf:
        for e in typed:
            e.is_set, e.kernel_btf_id, e.kernel_btf_obj_fd = True, 0, 0
    elif typed:
        from .vmlinux import find_kernel_type

        for e in typed:
            kid = find_kernel_type(e.name, B.FUNC if e.is_func else B.VAR)
            if kid:
                e.kernel_btf_id = kid
                e.is_set = True
                if e.is_func:
                    log.debug(f"extern (func ksym) '{e.name}': resolved to kernel [{kid}]")
                else:
                    log.debug(f"extern (var ksym) '{e.name}': resolved to [{kid}] var {e.name}")
            elif not e.weak:
                where = (
                    "func ksym) '{}': not found in kernel or module BTFs"
                    if e.is_func
                    else "var ksym) '{}': not found in kernel BTF"
                )
                raise log.load_error("extern (" + where.format(e.name), errno=errno.EINVAL)
    for e in obj.externs:  # libbpf's last word on every extern
        if not e.is_set and not e.weak:
            raise log.load_error(f"extern '{e.name}' (strong): not resolved", errno=errno.ESRCH)
        if not e.is_set:
            log.debug(f"extern '{e.name}' (weak): not resolved, defaulting to zero")


def _set_kcfg(e: Extern, data: bytearray, v: str, log: Log) -> None:
    t = e.kcfg_type
    if v in ("y", "m", "n") and t in ("bool", "tristate", "char"):
        if t == "bool":
            if v == "m":
                raise log.load_error(f"extern (kcfg) '{e.name}': value '{v}' implies tristate or char type")
            data[e.data_off] = 1 if v == "y" else 0
        elif t == "tristate":
            data[e.data_off] = {"y": 1, "m": 2, "n": 0}[v]
        else:
            data[e.data_off] = ord(v)
        e.is_set = True
        return
    if v.startswith('"'):
        if t != "char_arr":
            raise log.load_error(f"extern (kcfg) '{e.name}': value '{v}' implies char array type")
        s = v.strip('"').encode()[: e.size - 1]
        data[e.data_off : e.data_off + e.size] = s.ljust(e.size, b"\0")
        e.is_set = True
        return
    try:
        n = int(v, 0)
    except ValueError:
        raise log.load_error(f"extern (kcfg) '{e.name}': value '{v}' isn't a valid integer") from None
    if t != "int":
        raise log.load_error(f"extern (kcfg) '{e.name}': value '{v}' implies integer type")
    data[e.data_off : e.data_off + e.size] = (n & ((1 << (8 * e.size)) - 1)).to_bytes(e.size, "little")
    e.is_set = True
