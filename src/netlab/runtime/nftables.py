"""nf_tables over netlink: a batch of changes applied atomically, and the rules' counters.

What ``nft -f`` and ``iptables-save -c`` would otherwise do for netlab at run time, without
starting a program: a process start is the dearest thing in a TCG guest (the dynamic loader
alone), and a trace used to start two to four of them per node. The messages are built with
pyroute2's nf_tables classes (``nft_table_msg``, ``nft_chain_msg``, ``nft_rule_msg``).

nf_tables takes changes only inside a batch (``NFNL_MSG_BATCH_BEGIN`` ... ``END``), which the
kernel applies as one transaction: all of it, or on any error none of it. The batch's own
delimiters are not acknowledged, so the messages between them are read back by sequence number.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST
from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_NFTABLES
from pyroute2.netlink.nfnetlink.nftsocket import NFT_MSG_GETCHAIN, NFT_MSG_GETRULE, nft_chain_msg, nft_rule_msg

from netlab.runtime.netlink import (
    HEADER,
    NETLINK_NETFILTER,
    NLMSG_ERROR,
    messages,
    open_route_socket,
    parse_error,
    set_seq,
)
from netlab.runtime.queries import nft_dump

# include/uapi/linux/netfilter/nfnetlink.h
NFNL_MSG_BATCH_BEGIN = 0x10
NFNL_MSG_BATCH_END = 0x11
NFGENMSG = struct.Struct("BBH")  # family, version, res_id (big-endian: the subsystem)
#: a chain's policy (NFTA_CHAIN_POLICY) as the netfilter verdict it is
POLICIES = {0: "DROP", 1: "ACCEPT"}


def message(cls: type[Any], kind: int, family: int, attrs: list[tuple[str, Any]], flags: int) -> bytes:
    """An nf_tables message of pyroute2 class ``cls`` (type NFT_MSG_*) for table family ``family``."""
    msg = cls()
    msg["nfgen_family"] = family
    msg["attrs"] = attrs
    msg["header"]["type"] = (NFNL_SUBSYS_NFTABLES << 8) | kind
    msg["header"]["flags"] = flags
    msg.encode()
    return bytes(msg.data)


def _delimiter(kind: int) -> bytes:
    body = NFGENMSG.pack(0, 0, socket.htons(NFNL_SUBSYS_NFTABLES))
    return HEADER.pack(HEADER.size + len(body), kind, NLM_F_REQUEST, 0, 0) + body


def apply(netns: str | None, changes: Sequence[bytes]) -> None:
    """Apply ``changes`` (messages from :func:`message`) in ``netns`` as one transaction; raise
    :class:`OSError` with the kernel's words for the first one it refused (then none applied)."""
    inner = [
        set_seq(raw[:6] + struct.pack("H", HEADER.unpack_from(raw)[2] | NLM_F_ACK) + raw[8:], i + 1)
        for i, raw in enumerate(changes)
    ]
    datagram = _delimiter(NFNL_MSG_BATCH_BEGIN) + b"".join(inner) + _delimiter(NFNL_MSG_BATCH_END)
    waiting = set(range(1, len(inner) + 1))
    refused: tuple[int, int, str] | None = None  # seq, errno, words
    with open_route_socket(netns, NETLINK_NETFILTER) as sock:
        sock.send(datagram)
        while waiting:
            data = sock.recv(1 << 16)
            for off, length, kind, flags, seq in messages(data):
                if kind != NLMSG_ERROR or seq not in waiting:
                    continue
                waiting.discard(seq)
                err, words = parse_error(data, off, length, flags)
                if err and (refused is None or seq < refused[0]):
                    refused = (seq, err, words)
    if refused is not None:
        raise OSError(refused[1], refused[2])


@dataclass(frozen=True)
class Counted:
    """A rule (``index`` from 1 in its chain) or a base chain's policy (``index`` None) with its
    packet counter; ``policy`` is the policy's verdict (rules: None)."""

    family: int
    table: str
    chain: str
    index: int | None
    packets: int
    policy: str | None = None


def _packets(expressions: Iterable[Any]) -> int:
    """A rule's counter expression's packets (0 without one)."""
    for expr in expressions:
        if expr.get_attr("NFTA_EXPR_NAME") == "counter":
            data = expr.get_attr("NFTA_EXPR_DATA")
            return int(data.get_attr("NFTA_COUNTER_PACKETS") or 0) if data is not None else 0
    return 0


def counters(netns: str | None, family: int) -> list[Counted]:
    """Every counted rule and policy of ``family``'s tables in ``netns``, in chain order, as
    ``iptables-save -c`` lists them (iptables-nft gives each rule a counter expression and each
    base chain counters). A rule without a counter is listed with 0 packets, so that indexes
    stay those of the chain."""
    out: list[Counted] = []
    for chain in nft_dump(netns, NFT_MSG_GETCHAIN, nft_chain_msg, family):
        policy = chain.get_attr("NFTA_CHAIN_POLICY")
        stats = chain.get_attr("NFTA_CHAIN_COUNTERS")
        if policy is None:
            continue  # a user chain: no policy
        packets = int(stats.get_attr("NFTA_COUNTER_PACKETS") or 0) if stats is not None else 0
        out.append(
            Counted(
                family,
                chain.get_attr("NFTA_CHAIN_TABLE"),
                chain.get_attr("NFTA_CHAIN_NAME"),
                None,
                packets,
                POLICIES.get(policy, str(policy)),
            )
        )
    index: dict[tuple[str, str], int] = {}
    for rule in nft_dump(netns, NFT_MSG_GETRULE, nft_rule_msg, family):
        where = (rule.get_attr("NFTA_RULE_TABLE"), rule.get_attr("NFTA_RULE_CHAIN"))
        index[where] = index.get(where, 0) + 1
        out.append(
            Counted(family, where[0], where[1], index[where], _packets(rule.get_attr("NFTA_RULE_EXPRESSIONS") or []))
        )
    return out
