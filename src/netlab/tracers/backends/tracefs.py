"""The default tracer: tracepoints through a private trace buffer (a tracefs instance). No extra dependency.

Each session makes its own buffer (``instances/netlab_<pid>_<start>_<n>``), so sessions of
several labs, or of several pytest workers, never share a buffer or a setting, and the global
buffer other tools use is left alone. The instance is journaled in the lab before it is made,
so ``netlab down`` / ``netlab clean`` remove it if the tracing process dies.

It enables ``skb:kfree_skb`` (location and drop reason; the reason names come from the
running kernel, see :mod:`netlab.tracers.kernel.reasons`), optionally with the ``stacktrace``
trigger, and the path events ``net:net_dev_start_xmit``, ``net:netif_rx``,
``net:netif_receive_skb`` and ``skb:consume_skb``, the path events filtered in the kernel to
the device names of the labs that are up (theirs too, so that their packets are seen to be
theirs). One reader thread per CPU drains ``per_cpu/cpuN/trace_pipe_raw`` (keeping each CPU's
order, so a stack stays with its event). Events the ring buffer had to drop are read from the
per-CPU ``stats`` and reported as ``lost``, never silently.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from pathlib import Path

from netlab.errors import KernelFeatureError, NetlabError
from netlab.runtime.tracebuffers import TRACEFS, TraceBuffer, mounted
from netlab.scope import Scope
from netlab.tracers.base import Probe, Session, TraceOptions, Tracer
from netlab.tracers.decode import native
from netlab.tracers.decode.native import follow
from netlab.tracers.decode.records import Record
from netlab.tracers.decode.ringbuf import EventFormat, RecordDecoder
from netlab.tracers.decode.ringbuf import has_entries as entries_in
from netlab.tracers.events import DropEvent, TraceResult
from netlab.tracers.kernel import tracepoints
from netlab.tracers.kernel.reasons import FORMAT, parse_format
from netlab.tracers.kernel.symbols import kernel_symbols, symbolize
from netlab.tracers.placement import maps
from netlab.tracers.placement.attribution import ContextCache, LabMap
from netlab.tracers.placement.correlate import Correlator

EVENTS = tuple(tracepoints.tracefs_path(p) for p in tracepoints.ALL)
PATH_EVENT_FILES = frozenset(tracepoints.tracefs_path(p) for p in tracepoints.PATH)
MAX_FILTER = 3500
READER_DEADLINE = 300.0
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
POLL_INTERVAL = 0.01  # seconds between reads of an empty per-CPU buffer


class _Decoding:
    """What every CPU's decoder shares: the events' formats, reason names and symbols."""

    def __init__(self, formats: list[EventFormat], stack: EventFormat | None, reasons: dict[int, str]) -> None:

        self.formats, self.stack, self.reasons = formats, stack, reasons
        symbols = kernel_symbols()
        cache: dict[int, str] = {}

        def resolve(address: int) -> str:
            text = cache.get(address)
            if text is None:
                try:
                    text = symbolize(address, symbols)
                except NetlabError:
                    text = f"{address:#x}"
                cache[address] = text
            return text

        self.symbolize = resolve

    @classmethod
    def of(cls, instance: Path) -> _Decoding:

        events = instance / "events"
        formats = [EventFormat.parse((events / e / "format").read_text()) for e in EVENTS]
        stack_path = TRACEFS / "events" / "ftrace" / "kernel_stack" / "format"
        stack = EventFormat.parse(stack_path.read_text()) if stack_path.exists() else None
        return cls(formats, stack, parse_format((events / "skb" / "kfree_skb" / "format").read_text()))

    def decoder(self, cpu: int) -> RecordDecoder:
        return RecordDecoder(self.formats, self.stack, self.symbolize, self.reasons, cpu=cpu)

    def has_protocol(self) -> bool:
        """Does this kernel's ``kfree_skb`` carry the packet's protocol?"""
        return any(f.name == "kfree_skb" and f.has("protocol") for f in self.formats)


class _RecordReader:
    """One CPU's pages -> Records (the pure-Python decoder), each drop with its process context."""

    def __init__(self, decoder: RecordDecoder, contexts: ContextCache) -> None:
        self.decoder, self.contexts = decoder, contexts

    def feed(self, page: bytes) -> list[Record]:
        return self._with_contexts(self.decoder.feed(page))

    def flush(self) -> list[Record]:
        return self._with_contexts(self.decoder.flush())

    def _with_contexts(self, records: list[Record]) -> list[Record]:
        for rec in records:
            if rec.event == "kfree_skb":  # only a drop's process context is ever asked
                rec.context = self.contexts.get(rec.pid)
        return records


class TracefsTracer(Tracer):
    """Tracepoints via tracefs."""

    name = "tracefs"
    summary = "skb:kfree_skb with reasons, stacks and per-packet device paths (private trace buffer)"
    accepts = frozenset({"stack"})

    def probe(self) -> Probe:
        if os.geteuid() != 0:
            return Probe(False, "tracefs needs root")
        if not mounted():
            return Probe(False, f"tracefs is not mounted at {TRACEFS}: mount -t tracefs nodev {TRACEFS}")
        missing = [e for e in EVENTS if not (TRACEFS / "events" / e).is_dir()]
        if missing:
            return Probe(False, f"this kernel lacks the tracepoints {', '.join(missing)}")

        try:
            count = len(parse_format(FORMAT.read_text()))
        except OSError as exc:
            return Probe(False, f"cannot read {FORMAT}: {exc.strerror}")
        walker = native.load()
        decoding = "native walker" if walker.lib is not None else f"decoded in Python ({walker.why_not})"
        if not count:
            return Probe(
                True,
                f"{len(EVENTS)} tracepoints; no drop reasons on this kernel (before 5.17): locations only; {decoding}",
            )
        return Probe(True, f"{len(EVENTS)} tracepoints, {count} drop reasons from the running kernel; {decoding}")

    def _start(self, scope: Scope, options: TraceOptions) -> Session:
        return TracefsSession(scope, options)


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise KernelFeatureError(f"cannot write '{value.strip()}' to {path}: {exc.strerror}") from None


def name_filter(mine: LabMap, others: list[LabMap]) -> str | None:
    """The kernel filter for path events: every device name of every lab that is up.

    Other labs' names are included so that a packet of theirs which inherits the skb address
    of one of ours whose free we did not see (GRO, deferred frees) starts its own path instead
    of ending ours. None (no filter) when the names are too many for one filter.
    """
    names = set(mine.by_name).union(*(o.by_name for o in others))
    text = " || ".join(f'name == "{n}"' for n in sorted(names))
    return text if 0 < len(text) <= MAX_FILTER else None


class TracefsSession(Session):
    """One lab traced through one private instance."""

    def __init__(self, scope: Scope, options: TraceOptions) -> None:
        self.scope = scope
        self.options = options
        self.started = time.monotonic()
        mine, others = maps.of(scope), maps.others(scope)
        #: (cpu, batch) as the readers decoded them: Records, or packed records of the native walker
        self._pending: list[list[Record]] = []
        #: what the native decoders read, each CPU's records in one growing buffer
        self._packed: dict[int, bytearray] = {}
        self._contexts = ContextCache()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._stopped: TraceResult | None = None
        self._reader_errors: list[str] = []
        self.buffer = TraceBuffer(keep=scope.keep)
        self.name, self.path = self.buffer.name, self.buffer.path
        try:
            self._configure(mine, others)
            self._decoding = _Decoding.of(self.path)
        except BaseException:
            self.buffer.close()
            raise
        self.native = native.load() if not options.stack else native.Native(None, "stacks are decoded in Python")
        self.correlator: Correlator
        if self.native.lib is not None:
            table, self._event_names = follow.specs(self._decoding.formats)
            self._table = table
            self.correlator = follow.NativeCorrelator(
                self.native.lib,
                mine,
                others,
                "tracefs",
                events=self._event_names,
                symbolize=self._decoding.symbolize,
                reasons=self._decoding.reasons,
                has_protocol=self._decoding.has_protocol(),
            )
        else:
            self.correlator = Correlator(mine, others, "tracefs")
        for cpu_dir in sorted((self.path / "per_cpu").iterdir()):
            t = threading.Thread(target=self._reader, args=(cpu_dir,), daemon=True, name=f"tracefs {cpu_dir.name}")
            t.start()
            self._threads.append(t)

    def _configure(self, mine: LabMap, others: list[LabMap]) -> None:
        _write(self.path / "buffer_size_kb", str(self.options.buffer_kb))
        _write(self.path / "options" / "overwrite", "0")  # when full, drop new events and count them
        with contextlib.suppress(KernelFeatureError):  # poll() wakes at the first event, not at 50 %
            _write(self.path / "buffer_percent", "0")
        flt = name_filter(mine, others)
        for event in EVENTS:
            if flt and event in PATH_EVENT_FILES:
                _write(self.path / "events" / event / "filter", flt)
            _write(self.path / "events" / event / "enable", "1")
        if self.options.stack:
            _write(self.path / "events" / "skb" / "kfree_skb" / "trigger", "stacktrace")
        _write(self.path / "tracing_on", "1")

    def _decoder(self, cpu: int) -> follow.NativeDecoder | _RecordReader:
        if self.native.lib is not None:
            return follow.NativeDecoder(self.native.lib, self._table, cpu, self._contexts)
        return _RecordReader(self._decoding.decoder(cpu), self._contexts)

    def _keep(self, cpu: int, batch: bytes | list[Record]) -> None:
        if not batch:
            return
        with self._lock:
            if isinstance(batch, bytes):
                self._packed.setdefault(cpu, bytearray()).extend(batch)
            else:
                self._pending.append(batch)

    def _reader(self, cpu_dir: Path) -> None:
        fd = os.open(cpu_dir / "trace_pipe_raw", os.O_RDONLY | os.O_NONBLOCK)
        cpu = int(cpu_dir.name.removeprefix("cpu"))
        decoder = self._decoder(cpu)
        try:
            while True:
                stopping = self._stopping.is_set()
                try:
                    page = os.read(fd, PAGE_SIZE)
                except OSError as exc:
                    if exc.errno != errno.EAGAIN:
                        raise
                    page = b""
                if page and not entries_in(page):
                    page = b""  # nothing committed yet
                if page:
                    batch = decoder.feed(page)
                elif stopping:
                    batch = decoder.flush()
                else:
                    # Poll by sleeping, not with poll()/select() on trace_pipe_raw: on Debian's
                    # 6.1 a guest wedged (100 % CPU, no progress) in that wait path mid-suite.
                    time.sleep(POLL_INTERVAL)
                    continue
                self._keep(cpu, batch)
                if not page:
                    break
        except Exception as exc:  # noqa: BLE001 -- reported in the result, never silent
            with self._lock:
                self._reader_errors.append(f"{cpu_dir.name}: {exc!r}")
        finally:
            os.close(fd)

    def _drain(self) -> list[DropEvent]:
        with self._lock:
            batches, self._pending = self._pending, []
            packed, self._packed = self._packed, {}
        if isinstance(self.correlator, follow.NativeCorrelator):
            return self.correlator.follow(list(packed.values()), self._contexts)
        records = sorted((r for b in batches for r in b), key=lambda r: r.time)
        return self.correlator.feed(records)

    def poll(self) -> list[DropEvent]:
        return self._drain()

    def _lost(self) -> int:
        lost = 0
        for stats in (self.path / "per_cpu").glob("cpu*/stats"):
            with contextlib.suppress(OSError):
                for line in stats.read_text().splitlines():
                    key, _, value = line.partition(":")
                    if key.strip() in ("overrun", "dropped events"):
                        lost += int(value.strip() or 0)
        return lost

    def _finish(self, finished: list[int | BaseException]) -> None:
        """Read the losses, then remove the instance; what happened goes to ``finished``."""
        try:
            finished.append(self._lost())
        finally:
            try:
                self.buffer.close()
            except BaseException as exc:  # noqa: BLE001 -- raised by stop(), in its thread
                finished.append(exc)

    def stop(self) -> TraceResult:
        if self._stopped is not None:
            return self._stopped
        closer: threading.Thread | None = None
        finished: list[int | BaseException] = []
        try:
            with contextlib.suppress(OSError):
                (self.path / "tracing_on").write_text("0")
            self._stopping.set()
            # tracing is off, so each reader ends once its pipe is drained; a large backlog
            # takes a while to parse, hence the generous bound
            deadline = time.monotonic() + READER_DEADLINE
            for t in self._threads:
                t.join(timeout=max(0.0, deadline - time.monotonic()))
            if any(t.is_alive() for t in self._threads):
                raise NetlabError(f"tracefs readers still busy after {READER_DEADLINE:.0f}s; instance {self.name} kept")
            # The readers are done, so the loss counters are final: reading them and removing
            # the instance (which frees the ring buffer, 0.1-0.3 s for a large one) run beside
            # the following of what was read.
            closer = threading.Thread(target=self._finish, args=(finished,), name="tracefs close", daemon=True)
            closer.start()
            self._drain()
        finally:
            if closer is not None:
                closer.join()
            else:
                self.buffer.close()
            if isinstance(self.correlator, follow.NativeCorrelator):
                self.correlator.close()
        if isinstance(finished[-1], BaseException):
            raise finished[-1]
        lost = finished[0]
        assert isinstance(lost, int)
        notes = [f"{lost} events lost: the ring buffer filled faster than it was read"] if lost else []
        notes += [f"a reader failed, its CPU's events after that are missing: {e}" for e in self._reader_errors]
        result = self.correlator.result(time.monotonic() - self.started, lost=lost, notes=tuple(notes))
        self._stopped = result
        return result
