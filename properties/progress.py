"""Progress of long runs: a line as each piece of work finishes, and a heartbeat line on
stderr whenever nothing was printed for a while (a slow property, a slow cell or mutant),
saying what is running.

Work reports what it is doing with `note(job, text)`, from this process or from a worker
process of `map_jobs`; the notes reach the one `Progress` that the command opened.
"""

import concurrent.futures
import multiprocessing
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, Self, TextIO, TypeVar

W = TypeVar("W")
R = TypeVar("R")

QUIET_SECONDS = 8.0  # a heartbeat after this long without a line (the promise is 10 s)

# Where notes go: the open Progress in this process, or a queue to it from a worker.
_sink: Callable[[int, str], None] | None = None


def note(job: int, text: str) -> None:
    """Say what job `job` is doing now (shown by the heartbeat); a no-op with no Progress."""
    if _sink is not None:
        _sink(job, text)


class Progress:
    """Prints lines as work finishes, and a heartbeat when the run has been quiet for
    `quiet` seconds. A context manager: the heartbeat thread runs inside the `with`."""

    def __init__(self, total: int = 0, *, quiet: float = QUIET_SECONDS) -> None:
        self.total, self.quiet, self.done = total, quiet, 0
        self.running: dict[int, str] = {}
        self._finished: set[int] = set()  # a worker's late note must not revive its job
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._start = self._last = time.monotonic()
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._previous: Callable[[int, str], None] | None = None
        # The streams as they are now: a target's prints, captured while it runs, must not
        # take the run's own lines with them.
        self._out, self._err = sys.stdout, sys.stderr

    def __enter__(self) -> Self:
        global _sink
        self._previous, _sink = _sink, self.note
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        global _sink
        self._stop.set()
        self._thread.join()
        _sink = self._previous

    def note(self, job: int, text: str) -> None:
        with self._lock:
            if job not in self._finished:
                self.running[job] = text

    def finished(self, job: int) -> None:
        with self._lock:
            self.running.pop(job, None)
            self._finished.add(job)
            self.done += 1

    def line(self, text: str, stream: TextIO | None = None) -> None:
        """Print a line now (stdout by default) and restart the quiet clock."""
        with self._lock:
            print(text, file=stream or self._out, flush=True)
            self._last = time.monotonic()

    def heartbeat_text(self) -> str:
        now = time.monotonic()
        running = "; ".join(self.running[j] for j in sorted(self.running)) or "starting"
        done = f"{self.done}/{self.total} done, " if self.total else ""
        return f"... {done}running: {running} ({now - self._start:.0f} s so far)"

    def _beat(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                if time.monotonic() - self._last < self.quiet:
                    continue
                print(self.heartbeat_text(), file=self._err, flush=True)
                self._last = time.monotonic()


def _worker_sink(queue: Any) -> None:
    global _sink
    _sink = lambda job, text: queue.put((job, text))  # noqa: E731


def _drain(queue: Any, progress: Progress | None) -> None:
    """Read the workers' notes until the sentinel; always read, or a worker with notes
    still buffered for the queue could not exit."""
    while (item := queue.get()) is not None:
        if progress is not None:
            progress.note(*item)


def map_jobs(
    fn: Callable[[int, W], R],
    work: Sequence[W],
    workers: int,
    progress: Progress | None = None,
    budget: float | None = None,
) -> Iterator[tuple[int, R]]:
    """(index, fn(index, item)) for every item, as each finishes: in this process when
    `workers` <= 1, else in that many spawned worker processes (torch and fork mix badly),
    whose notes reach `progress`. With a `budget` (seconds), nothing is started once it is
    spent, and items still running then are ended and left out."""
    deadline = None if budget is None else time.monotonic() + budget
    if workers <= 1:
        for i, item in enumerate(work):
            if deadline is not None and time.monotonic() > deadline:
                return
            result = fn(i, item)
            if progress is not None:
                progress.finished(i)
            yield i, result
        return
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    threading.Thread(target=_drain, args=(queue, progress), daemon=True).start()
    pool = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_sink, initargs=(queue,)
    )
    spent = False
    try:
        futures = {pool.submit(fn, i, item): i for i, item in enumerate(work)}
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            for future in concurrent.futures.as_completed(futures, timeout=left):
                i = futures[future]
                result = future.result()
                if progress is not None:
                    progress.finished(i)
                yield i, result
        except concurrent.futures.TimeoutError:
            spent = True
    finally:
        # An item still running past the budget would hold the run open until it ends: its
        # worker is ended (the pool's own processes; shutdown forgets them).
        running = list((getattr(pool, "_processes", None) or {}).values()) if spent else []
        pool.shutdown(wait=not spent, cancel_futures=True)  # queued items never start
        for process in running:
            process.terminate()
        queue.put(None)


def in_order(pairs: Iterator[tuple[int, R]]) -> Iterator[R]:
    """The results of `map_jobs` in the order of its work, each as soon as it and every
    earlier one are done."""
    waiting: dict[int, R] = {}
    nxt = 0
    for i, result in pairs:
        waiting[i] = result
        while nxt in waiting:
            yield waiting.pop(nxt)
            nxt += 1
