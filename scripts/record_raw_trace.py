"""Record raw ring-buffer pages of a known drop, for the decoder's unit tests.

    netlab vm -k 6.1 -w tests/data/recorded/raw -- python scripts/record_raw_trace.py tests/data/recorded/raw

brings up bridge3, traces ``skb:kfree_skb`` (with the stacktrace trigger) and
``net:netif_receive_skb`` in a private trace buffer (tracefs instance) while 3 UDP datagrams go to a closed
port, and writes ``OUT/RELEASE/``: each CPU's ``trace_pipe_raw`` bytes, the events' ``format``
files, and the lines of /proc/kallsyms the recorded addresses fall in (so the test can resolve
them without the kernel that made them).
"""

from __future__ import annotations

import bisect
import errno
import os
import platform
import sys
from pathlib import Path

from netlab.lab import up
from netlab.tracers.decode.ringbuf import EventFormat, entries, kernel_stack
from netlab.traffic.api import Traffic

TRACEFS = Path("/sys/kernel/tracing")
EVENTS = ("skb/kfree_skb", "net/netif_receive_skb")


def main(out_root: Path) -> None:
    out = out_root / platform.release()
    out.mkdir(parents=True, exist_ok=True)
    inst = TRACEFS / "instances" / f"netlab_record_{os.getpid()}"
    with up("bridge3", instance=f"rec{os.getpid() % 10000}") as lab:
        inst.mkdir()
        try:
            for event in EVENTS:
                (inst / "events" / event / "enable").write_text("1")
            (inst / "events/skb/kfree_skb/trigger").write_text("stacktrace")
            (inst / "tracing_on").write_text("1")
            Traffic(lab).inject("ns-calm1", "calmveth1", "udp", dst="198.51.100.2", dport=9999, count=3)
            (inst / "tracing_on").write_text("0")
            pages = _drain(inst)
            (inst / "events/skb/kfree_skb/trigger").write_text("!stacktrace")
            (inst / "events/enable").write_text("0")
        finally:
            inst.rmdir()
    for cpu, data in pages.items():
        (out / f"{cpu}.raw").write_bytes(data)
    formats = {}
    for event in EVENTS:
        text = (TRACEFS / "events" / event / "format").read_text()
        (out / f"{event.replace('/', '.')}.format").write_text(text)
        formats[event] = EventFormat.parse(text)
    stack_text = (TRACEFS / "events/ftrace/kernel_stack/format").read_text()
    (out / "ftrace.kernel_stack.format").write_text(stack_text)
    stack = EventFormat.parse(stack_text)
    addresses = _addresses(pages, formats["skb/kfree_skb"], stack)
    (out / "kallsyms").write_text(_kallsyms_excerpt(addresses))
    print(f"recorded {sum(len(p) for p in pages.values())} bytes, {len(addresses)} addresses in {out}")  # noqa: T201


def _drain(inst: Path) -> dict[str, bytes]:
    pages: dict[str, bytes] = {}
    page_size = os.sysconf("SC_PAGE_SIZE")
    for cpu_dir in sorted((inst / "per_cpu").iterdir()):
        fd = os.open(cpu_dir / "trace_pipe_raw", os.O_RDONLY | os.O_NONBLOCK)
        chunks = []
        try:
            while True:
                try:
                    page = os.read(fd, page_size)
                except OSError as exc:
                    if exc.errno == errno.EAGAIN:
                        break
                    raise
                if not page:
                    break
                chunks.append(page.ljust(page_size, b"\0"))
        finally:
            os.close(fd)
        if chunks:
            pages[cpu_dir.name] = b"".join(chunks)
    return pages


def _addresses(pages: dict[str, bytes], kfree: EventFormat, stack: EventFormat) -> set[int]:
    found: set[int] = set()
    location = kfree.fields["location"]
    for data in pages.values():
        for offset in range(0, len(data), os.sysconf("SC_PAGE_SIZE")):
            for e in entries(data[offset : offset + os.sysconf("SC_PAGE_SIZE")]):
                if e.type_id == kfree.id:
                    value = location.read(e.data)
                    if isinstance(value, int):
                        found.add(value)
                elif e.type_id == stack.id:
                    found.update(kernel_stack(e.data, stack))
    return found


def _kallsyms_excerpt(addresses: set[int]) -> str:
    rows = []
    for line in Path("/proc/kallsyms").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] in "tTwW":
            rows.append((int(parts[0], 16), line))
    rows.sort()
    keys = [a for a, _ in rows]
    keep: set[int] = set()
    for address in addresses:
        i = bisect.bisect_right(keys, address) - 1
        if i >= 0:
            keep.update({i, i + 1})
    return "".join(rows[i][1] + "\n" for i in sorted(keep) if i < len(rows))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
