"""A zero-downtime probe: steady traffic to the prod address while a release deploys and swaps.

A few background threads, each with its own keep-alive HTTP session, request the user paths of prod
and record every answer's latency and every failure with a timestamp; the pipeline marks
the moment of the swap. Load is bounded in threads, requests and time. The judgement of
the samples lives in `flows.release.probe_stats`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from types import TracebackType

from flows import http
from flows.release.probe_stats import ProbeSummary, Sample, SwapMark, summarize
from flows.release.settings import UserPath


class Probe:
    """Background traffic to one URL; use as a context manager or with `start()`/`stop()`."""

    def __init__(
        self,
        url: str,
        *,
        threads: int = 8,
        paths: Sequence[UserPath] = (UserPath(path="/health", accept="application/json"),),
        max_requests: int = 100_000,
        max_seconds: float = 900.0,
        pause_s: float = 0.0,
        timeout_s: float = 5.0,
    ) -> None:
        self.paths = tuple(paths) or (UserPath(path="/health", accept="application/json"),)
        self.base_url = url.rstrip("/")
        self.threads = threads
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.pause_s = pause_s
        self.timeout_s = timeout_s
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._t0 = 0.0
        self._swap_start: float | None = None
        self._swap_end: float | None = None

    def __enter__(self) -> Probe:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def started(self) -> bool:
        """Whether `start()` was called (a probe never started has nothing to report)."""
        return self._t0 != 0.0

    def now(self) -> float:
        """Seconds since the probe started."""
        return time.monotonic() - self._t0

    def start(self) -> None:
        """Start the worker threads."""
        self._t0 = time.monotonic()
        self._stop.clear()
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, args=(index,), name=f"probe-{index}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def mark_swap_start(self) -> None:
        """Record that the swap is about to run."""
        self._swap_start = self.now()

    def mark_swap_end(self) -> None:
        """Record that the swap returned."""
        self._swap_end = self.now()

    @property
    def swap(self) -> SwapMark | None:
        """The swap window marked so far, if any."""
        if self._swap_start is None:
            return None
        end = self._swap_end if self._swap_end is not None else self._swap_start
        return SwapMark(round(self._swap_start, 3), round(end, 3))

    def samples(self) -> list[Sample]:
        """A copy of the samples recorded so far, in order of start."""
        with self._lock:
            return sorted(self._samples, key=lambda s: s.start)

    def stop(self) -> ProbeSummary:
        """Stop the workers (each finishes its current request) and summarize."""
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=self.timeout_s + 1.0)
        self._workers.clear()
        return self.summary()

    def summary(self) -> ProbeSummary:
        """The figures of the samples recorded so far."""
        return summarize(self.base_url, self.samples(), self.swap)

    def _budget_left(self) -> bool:
        with self._lock:
            return len(self._samples) < self.max_requests

    def _record(self, sample: Sample) -> None:
        with self._lock:
            self._samples.append(sample)

    def _run(self, index: int) -> None:
        """One thread: its own keep-alive session, the user paths in turn; a 5xx or no answer fails."""
        session = http.session()
        turn = index
        try:
            while not self._stop.is_set() and self.now() < self.max_seconds and self._budget_left():
                path = self.paths[turn % len(self.paths)]
                turn += 1
                started = self.now()
                answer = http.get(
                    self.base_url + path.path,
                    timeout=self.timeout_s,
                    headers={"Accept": path.accept},
                    session=session,
                )
                ok = not answer.server_error
                detail = "" if ok else (answer.error or f"HTTP {answer.status}")[:300]
                self._record(
                    Sample(round(started, 4), round(self.now() - started, 5), ok, detail, path.label())
                )
                if self.pause_s:
                    self._stop.wait(self.pause_s)
        finally:
            session.close()
