"""Registration of the load/loadall/pin verbs (imports nothing heavy)."""

from bpft.api import Command, HelpLine
from bpft.hookspecs import hookimpl

DIST = "bpft-load"

HELP_TYPE = (
    "TYPE := { socket | kprobe | kretprobe | classifier | action |\n"
    "                 tracepoint | raw_tracepoint | xdp | perf_event | cgroup/skb |\n"
    "                 cgroup/sock | cgroup/dev | lwt_in | lwt_out | lwt_xmit |\n"
    "                 lwt_seg6local | sockops | sk_skb | sk_msg | lirc_mode2 |\n"
    "                 sk_reuseport | flow_dissector | cgroup/sysctl |\n"
    "                 cgroup/bind4 | cgroup/bind6 | cgroup/post_bind4 |\n"
    "                 cgroup/post_bind6 | cgroup/connect4 | cgroup/connect6 |\n"
    "                 cgroup/getpeername4 | cgroup/getpeername6 |\n"
    "                 cgroup/getsockname4 | cgroup/getsockname6 | cgroup/sendmsg4 |\n"
    "                 cgroup/sendmsg6 | cgroup/recvmsg4 | cgroup/recvmsg6 |\n"
    "                 cgroup/getsockopt | cgroup/setsockopt | cgroup/sock_release |\n"
    "                 struct_ops | fentry | fexit | freplace | sk_lookup }"
)


@hookimpl
def bpft_commands():
    return [
        Command(
            "prog",
            "pin",
            "bpft_load.pin:run",
            rank=50,
            usage=("{bin} {obj} pin   PROG FILE",),
            usage_rank=50,
            summary="pin a program to a file in bpffs",
            distribution=DIST,
        ),
        Command(
            "prog",
            "load",
            "bpft_load.load:run_load",
            rank=60,
            usage=(
                "{bin} {obj} { load | loadall } OBJ  PATH \\\n"
                "                         [type TYPE] [dev NAME] \\\n"
                "                         [map { idx IDX | name NAME } MAP]\\\n"
                "                         [pinmaps MAP_DIR]",
            ),
            usage_rank=60,
            summary="load the first program of an ELF object and pin it",
            distribution=DIST,
        ),
        Command(
            "prog",
            "loadall",
            "bpft_load.load:run_loadall",
            rank=70,
            summary="load all programs of an ELF object and pin them",
            distribution=DIST,
        ),
    ]


@hookimpl
def bpft_help_lines():
    return [
        HelpLine("prog", HELP_TYPE, 30),
    ]
