"""Progress of long runs: a line as each piece of work finishes, and a heartbeat line on
stderr whenever nothing was printed for a while (a slow property, a slow cell or mutant),
saying what is running.

Work reports what it is doing with `note(job, text)` in this process (a pytest session's
controller notes the items its workers start); the notes reach the one `Progress` that the
command opened.
"""

import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self, TextIO

QUIET_SECONDS = 8.0  # a heartbeat after this long without a line (the promise is 10 s)

# Where notes go: the open Progress in this process.
_sink: Callable[[int, str], None] | None = None


def note(job: int, text: str) -> None:
    """Say what job `job` is doing now (shown by the heartbeat); a no-op with no Progress."""
    if _sink is not None:
        _sink(job, text)


class Progress:
    """Prints lines as work finishes, and a heartbeat when the run has been quiet for
    `quiet` seconds. A context manager: the heartbeat thread runs inside the `with`."""

    def __init__(
        self,
        total: int = 0,
        *,
        quiet: float = QUIET_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.quiet, self.done, self._clock = total, quiet, 0, clock
        self.running: dict[int, str] = {}
        self._finished: set[int] = set()  # a worker's late note must not revive its job
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._start = self._last = clock()
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
            self._last = self._clock()

    def heartbeat_text(self) -> str:
        now = self._clock()
        running = "; ".join(self.running[j] for j in sorted(self.running)) or "starting"
        done = f"{self.done}/{self.total} done, " if self.total else ""
        return f"... {done}running: {running} ({now - self._start:.0f} s so far)"

    def tick(self) -> None:
        """One look at the quiet clock: a heartbeat line when nothing was printed for
        `quiet` seconds (the thread inside the `with` looks every 0.5 s)."""
        with self._lock:
            now = self._clock()
            if now - self._last < self.quiet:
                return
            print(self.heartbeat_text(), file=self._err, flush=True)
            self._last = now

    def _beat(self) -> None:
        while not self._stop.wait(0.5):
            self.tick()
