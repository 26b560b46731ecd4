"""Registration of ``prog attach|detach`` and the ``link`` object (imports nothing heavy)."""

from bpft.api import Command, HelpLine
from bpft.hookspecs import hookimpl

DIST = "bpft-attach"

HELP_ATTACH_TYPE = (
    "ATTACH_TYPE := { sk_msg_verdict | sk_skb_verdict | sk_skb_stream_verdict |\n"
    "                        sk_skb_stream_parser | flow_dissector }"
)
HELP_TARGET = (
    "TARGET := { xdp dev IFACE [{ skb | drv | hw }] | tcx_ingress dev IFACE |\n"
    "                   tcx_egress dev IFACE | tc_ingress dev IFACE | tc_egress dev IFACE |\n"
    "                   cgroup_ATTACH cgroup PATH | sk_lookup netns PATH |\n"
    "                   flow_dissector netns PATH | kprobe FUNC[+OFF] | kretprobe FUNC |\n"
    "                   uprobe BINARY:SYMBOL[+OFF] | uretprobe BINARY:SYMBOL |\n"
    "                   tracepoint CATEGORY:NAME | raw_tp NAME | tracing | lsm | iter |\n"
    "                   perf_event PERF_EVENT [{ freq HZ | period N }] [cpu CPU] [pid PID] }"
)
HELP_PERF_EVENT = (
    "PERF_EVENT := { cpu-clock | task-clock | page-faults | context-switches |\n"
    "                       cpu-migrations | minor-faults | major-faults | alignment-faults |\n"
    "                       emulation-faults | cgroup-switches | cpu-cycles | instructions |\n"
    "                       cache-references | cache-misses | branch-instructions |\n"
    "                       branch-misses | bus-cycles | stalled-cycles-frontend |\n"
    "                       stalled-cycles-backend | ref-cycles }\n"
    "       perf_event: 99 Hz unless freq or period; no cpu and no pid: a link on every online\n"
    "       CPU, and 'link DIR' pins them in the new directory DIR (cpu0, cpu1...)"
)
HELP_LINK = "LINK := { id LINK_ID | pinned FILE }"
HELP_LINK_OPTIONS = (
    "OPTIONS := { {-j|--json} [{-p|--pretty}] | {-d|--debug} | {-l|--legacy} |\n"
    "                    {-f|--bpffs} | {-n|--nomount} }"
)


@hookimpl
def bpft_commands():
    return [
        Command(
            "prog",
            "attach",
            "bpft_attach.attach:run_attach",
            rank=80,
            usage=("{bin} {obj} attach PROG ATTACH_TYPE [MAP]", "{bin} {obj} attach PROG TARGET [link FILE]"),
            usage_rank=80,
            summary="attach a program to a map, or anywhere else the kernel offers",
            distribution=DIST,
        ),
        Command(
            "prog",
            "detach",
            "bpft_attach.attach:run_detach",
            rank=90,
            usage=("{bin} {obj} detach PROG ATTACH_TYPE [MAP]", "{bin} {obj} detach PROG TARGET"),
            usage_rank=90,
            summary="detach a program from a map, or from a TARGET",
            distribution=DIST,
        ),
        Command(
            "link",
            "show",
            "bpft_attach.link:run_show",
            rank=10,
            usage=("{bin} {obj} { show | list }   [LINK]",),
            usage_rank=10,
            summary="show links",
            distribution=DIST,
        ),
        Command("link", "list", "bpft_attach.link:run_show", rank=20, distribution=DIST),
        Command(
            "link",
            "help",
            "bpft_attach.link:run_help",
            rank=30,
            usage=("{bin} {obj} help",),
            usage_rank=10_000,
            distribution=DIST,
        ),
        Command(
            "link",
            "pin",
            "bpft_attach.link:run_pin",
            rank=40,
            usage=("{bin} {obj} pin        LINK  FILE",),
            usage_rank=40,
            summary="pin a link",
            distribution=DIST,
        ),
        Command(
            "link",
            "detach",
            "bpft_attach.link:run_detach",
            rank=50,
            usage=("{bin} {obj} detach     LINK",),
            usage_rank=50,
            summary="detach a link",
            distribution=DIST,
        ),
    ]


@hookimpl
def bpft_help_lines():
    return [
        HelpLine("prog", HELP_ATTACH_TYPE, 40),
        HelpLine("prog", HELP_TARGET, 45),
        HelpLine("prog", HELP_PERF_EVENT, 46),
        HelpLine("link", HELP_LINK, 10),
        HelpLine("link", HELP_LINK_OPTIONS, 1000),
    ]
