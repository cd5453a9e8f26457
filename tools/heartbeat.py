"""Run a command and pass its output through as it comes; after `every` seconds without a
byte of output, print a line saying what is still running. nox runs every tool through it
(noxfile._run), so that no session is silent for more than 10 s (pip installing torch and
mypy checking the package print nothing for a minute or more).

    python tools/heartbeat.py [--every SECONDS] -- COMMAND [ARG ...]

Exits with the command's exit code. At the end it prints the longest silence it saw,
counting its own lines as output: the figure the README's promise is measured by."""

import argparse
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

EVERY = 8.0  # seconds: under the README's 10, with room for a slow write


@dataclass
class Silence:
    """When output last came, when the next heartbeat is due, and the longest gap seen."""

    every: float
    start: float
    last: float = field(init=False)
    longest: float = 0.0

    def __post_init__(self) -> None:
        self.last = self.start

    def output(self, now: float) -> None:
        self.longest = max(self.longest, now - self.last)
        self.last = now

    def due(self, now: float) -> bool:
        return now - self.last >= self.every


def run(
    command: Sequence[str],
    every: float = EVERY,
    write: Callable[[bytes], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[int, float]:
    """(exit code, longest silence in seconds) of `command`, its output passed to `write`."""
    out = write or _stdout
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # a Python child's output as it is written
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    assert child.stdout is not None
    silence = Silence(every, clock())
    lock = threading.Lock()

    def pump() -> None:
        assert child.stdout is not None
        while chunk := os.read(child.stdout.fileno(), 65536):
            with lock:
                out(chunk)
                silence.output(clock())

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    name = _name(command)
    while reader.is_alive():
        reader.join(timeout=0.5)
        with lock:
            now = clock()
            if reader.is_alive() and silence.due(now):
                out(f"... still running: {name} ({now - silence.start:.0f} s)\n".encode())
                silence.output(now)
    code = child.wait()
    silence.output(clock())
    return code, silence.longest


def _name(command: Sequence[str]) -> str:
    """What the lines call the command: `pip`, not `python`, for `python -m pip ...`."""
    name = os.path.basename(command[0])
    if name.startswith("python") and len(command) > 2 and command[1] == "-m":
        return command[2]
    return name


def _stdout(chunk: bytes) -> None:
    sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="heartbeat", description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=float, default=EVERY, help="seconds (default 8)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG ...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or args.every <= 0:
        parser.error("give a command after --, and --every above 0")
    code, longest = run(command, args.every)
    print(f"heartbeat: {_name(command)} exited {code}; longest silence {longest:.1f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
