"""A snapshot of the root namespace, to prove a lab changed nothing there.

Links (name, flags, MTU, MAC), ``iptables-save`` and ``nft list ruleset`` without counters,
every readable net.* sysctl, named namespaces, netlab records and tracefs instances.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

# counters and caches the kernel moves by itself
_VOLATILE = re.compile(r"(nf_conntrack_count|/neigh/.*/(gc_|base_reachable_time$)|route/flush|/stable_secret$)")


def _run(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except FileNotFoundError:
        return f"<{argv[0]} missing>"
    return proc.stdout


def _sysctls() -> dict[str, str]:
    out: dict[str, str] = {}
    for root, _dirs, files in os.walk("/proc/sys/net"):
        for name in files:
            path = os.path.join(root, name)
            if _VOLATILE.search(path):
                continue
            try:
                with open(path) as f:
                    out[path] = f.read()
            except OSError:
                continue
    return out


def snapshot() -> dict[str, object]:
    """The state a lab must leave as it found it."""
    links = re.sub(r"\\\s+", " ", _run(["ip", "-o", "link", "show"]))
    links = re.sub(r"(qlen \d+).*", r"\1", links)
    ipt = "\n".join(ln for ln in _run(["iptables-save"]).splitlines() if not ln.startswith("#"))
    ipt = re.sub(r"\[\d+:\d+\]", "", ipt)
    nft = re.sub(r"counter packets \d+ bytes \d+", "counter", _run(["nft", "list", "ruleset"]))
    tracing = Path("/sys/kernel/tracing/instances")
    return {
        "links": links,
        "iptables": ipt,
        "nft": nft,
        "sysctls": _sysctls(),
        "netns": sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else [],
        "records": sorted(os.listdir("/run/netlab")) if os.path.isdir("/run/netlab") else [],
        "instances": sorted(p.name for p in tracing.iterdir()) if tracing.is_dir() else [],
    }


def _module_default(path: str, value: str) -> bool:
    """A setting that appeared because ``up`` loaded br_netfilter, at the value that means
    "behave as without the module" (netlab.apply.modules sets bridge-nf-call-* back to 0)."""
    return path.startswith("/proc/sys/net/bridge/") and value.strip() == "0"


def diff(before: dict[str, object], after: dict[str, object]) -> list[str]:
    """Human-readable differences, empty when the host is unchanged."""
    changes = []
    for key, old in before.items():
        if old == after[key]:
            continue
        if key == "sysctls":
            b, a = old, after[key]
            assert isinstance(b, dict) and isinstance(a, dict)
            for k in sorted(set(b) | set(a)):
                if k not in b and _module_default(k, a[k]):
                    continue
                if b.get(k) != a.get(k):
                    changes.append(f"sysctl {k}: {b.get(k)!r} -> {a.get(k)!r}")
        else:
            changes.append(f"{key}: {old!r} -> {after[key]!r}")
    return changes
