"""``netlab trace --host``: the whole machine traced without naming a lab, and left unchanged."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from netlab.host import Host
from netlab.pytest_plugin.plugin import LabFactory
from netlab.runtime import softnet
from netlab.tracers.placement import maps
from netlab.traffic.inject import inject
from tests.integration.conftest import ROOT, interruptible, netlab_cli


def host_trace(*args: str) -> subprocess.Popen[str]:
    """`netlab trace --host ARGS --json` as a user starts it, returned once it is ready."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "netlab", "trace", "--host", "--json", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,  # noqa: PLW1509 -- only signal.signal runs in the child
    )
    assert proc.stderr is not None
    assert "ready" in proc.stderr.readline()
    return proc


def stopped(proc: subprocess.Popen[str]) -> dict[str, object]:
    softnet.wait_drained()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    data: dict[str, object] = json.loads(out)
    return data


def machine_state(lab: str) -> dict[str, str]:
    """What a whole-machine trace must leave as it found it (the lab's own files aside: what
    netlab sends into it is logged there)."""

    def run(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout

    modules = Path("/proc/modules")  # absent on a kernel built without modules
    loaded = modules.read_text().splitlines() if modules.exists() else []
    return {
        "modules": " ".join(sorted(line.split()[0] for line in loaded)),
        "netns": run("ip", "netns", "list"),
        "nft": run("nft", "list", "ruleset"),
        "sysctl": run("sysctl", "-a", "--pattern", r"^net\.(core|ipv4\.conf\.all|ipv4\.ip_forward)"),
        "instances": " ".join(sorted(os.listdir("/sys/kernel/tracing/instances"))),
        "journals": " ".join(sorted(f for f in os.listdir("/run/netlab") if not f.startswith(lab + "."))),
    }


def test_the_seeds_case_is_found_on_the_host_without_naming_the_lab(netlab_up: LabFactory) -> None:
    """Frames of an unhandled ethertype and STP BPDUs arrive on an interface; `rx_dropped`
    grows. `netlab trace --host` finds where and why, in which namespace and on which device,
    beside the counter's own delta, and the machine is as it was."""
    lab = netlab_up("veth-two-ns")
    before = machine_state(lab.name)
    proc = host_trace()
    inject(lab, "ns1", "veth1", "ethertype", ethertype=0x88B5, count=4)
    inject(lab, "ns1", "veth1", "stp", count=2)
    data = stopped(proc)
    ns2 = f"{lab.name}.ns2"
    summary = data["summary"]
    assert isinstance(summary, list)
    got = {(s["node"], s["device"], s["function"], s["reason"]): s["count"] for s in summary}
    assert got[(ns2, "veth2", "__netif_receive_skb_core", "UNHANDLED_PROTO")] == 4, summary
    assert got[(ns2, "veth2", "stp_pdu_rcv", "NOT_SPECIFIED")] == 2, summary
    counters = data["counters"]
    assert isinstance(counters, list)
    assert {"node": ns2, "ifname": "veth2", "rx_dropped": 4, "tx_dropped": 0} in counters, counters
    assert machine_state(lab.name) == before


def test_one_device_and_one_namespace_narrow_it(netlab_up: LabFactory) -> None:
    lab = netlab_up("veth-two-ns")
    ns1 = f"{lab.name}.ns1"
    proc = host_trace("--netns", ns1)
    inject(lab, "ns1", "veth1", "ethertype", ethertype=0x88B5, count=2)  # dies in ns2: not shown
    data = stopped(proc)
    assert not [s for s in data["summary"] if s["node"] != ns1], data["summary"]  # type: ignore[attr-defined]
    proc = host_trace("--dev", "veth2")
    inject(lab, "ns1", "veth1", "ethertype", ethertype=0x88B5, count=2)
    data = stopped(proc)
    assert {s["device"] for s in data["summary"]} == {"veth2"}  # type: ignore[attr-defined]
    assert [c["ifname"] for c in data["counters"]] == ["veth2"]  # type: ignore[attr-defined]


def test_the_namespaces_and_their_veth_peers_are_read_not_assigned(netlab_up: LabFactory) -> None:
    """Each namespace is a node, named as ip netns names it, and a veth's peer is found across
    namespaces (the id one namespace gives another is only read, never assigned)."""
    lab = netlab_up("veth-two-ns")
    ns1, ns2 = f"{lab.name}.ns1", f"{lab.name}.ns2"
    m = maps.of(Host())
    assert m.peer[(ns1, "veth1")] == (ns2, "veth2") and m.peer[(ns2, "veth2")] == (ns1, "veth1")
    assert "host" in m.netns_inodes.values()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--host", "--netns", "no-such-ns"], "no network namespace 'no-such-ns'"),
        (["--host", "--tracer", "dropwatch"], "--host traces with tracefs, perf, bpftrace only"),
        (["--host", "veth-two-ns"], "give a LAB or --host, not both"),
        (["--netns", "x", "veth-two-ns"], "--netns and --dev narrow --host"),
        ([], "give a LAB to trace"),
    ],
)
def test_wrong_uses_say_so_in_one_line(args: list[str], says: str) -> None:
    result = netlab_cli("trace", *args)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert says in result.stderr, result.stderr


def test_a_killed_host_trace_leaves_what_clean_removes(netlab_up: LabFactory) -> None:
    """Nothing journals a host trace: its trace buffer carries its PID, `netlab clean` removes
    it once that process is gone, and its bpftrace helper (if any) dies with it."""
    netlab_up("veth-two-ns")
    before = set(os.listdir("/sys/kernel/tracing/instances"))
    proc = host_trace()
    proc.kill()
    proc.wait(timeout=10)
    assert len(set(os.listdir("/sys/kernel/tracing/instances")) - before) == 1
    result = netlab_cli("clean")
    assert result.returncode == 0, result.stderr
    assert set(os.listdir("/sys/kernel/tracing/instances")) == before
