"""Record the function tracers' output of a TCP flow across bridge3, for the parsers' tests.

    netlab vm -k 6.1 -w tests/data/recorded/ftrace -- python scripts/record_function_walk.py tests/data/recorded/ftrace

brings up bridge3, sends 4 KiB over TCP from ns-calm1 to ns-calm2 once with ``--graph``
(function_graph where the kernel allows it in a trace buffer, else function) and once with the
plain function tracer, and writes ``OUT/RELEASE/{graph,function}.txt``: the buffer's
``trace`` text as the kernel printed it, and ``functions.txt``, the functions traced.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

from netlab.lab import up
from netlab.tracers.backends.ftrace import FtraceSession
from netlab.tracers.base import TraceOptions
from netlab.traffic.api import Traffic


def main(out_root: Path) -> None:
    out = out_root / platform.release()
    out.mkdir(parents=True, exist_ok=True)
    with up("bridge3", instance="walk") as lab:
        for name, graph in (("graph", True), ("function", False)):
            session = FtraceSession(lab, "function", TraceOptions(graph=graph))
            Traffic(lab).flow("ns-calm1", "ns-calm2", 4096, timeout=120)
            session.buffer.write("tracing_on", "0")
            text = (session.buffer.path / "trace").read_text()
            result = session.stop()
            (out / f"{name}.txt").write_text(text)
            if graph:
                (out / "functions.txt").write_text("\n".join([session.kind, *session.functions]) + "\n")
            print(f"{name}: {session.kind}, {len(result.calls)} calls, {len(text.splitlines())} lines")  # noqa: T201


if __name__ == "__main__":
    main(Path(sys.argv[1]))
