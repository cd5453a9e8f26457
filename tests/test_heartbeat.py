"""tools/heartbeat.py, which nox runs every tool through: output passes through, the exit
code is kept, and a silent command gets a line every `every` seconds. Time is a counter the
test advances (each clock reading is one tick), not measured."""

import importlib.util
import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("heartbeat", ROOT / "tools" / "heartbeat.py")
assert _spec is not None and _spec.loader is not None
heartbeat = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(heartbeat)


def test_a_gap_is_measured_from_the_last_output_and_a_beat_is_due_after_every() -> None:
    s = heartbeat.Silence(every=8.0, start=0.0)
    assert not s.due(7.9) and s.due(8.0)
    s.output(3.0)
    s.output(12.5)
    assert s.longest == 9.5 and not s.due(20.0) and s.due(20.5)


def test_output_and_exit_code_pass_through() -> None:
    out: list[bytes] = []
    code, _ = heartbeat.run(
        [sys.executable, "-c", "import sys; print('made it'); sys.exit(3)"], write=out.append
    )
    assert code == 3 and b"made it" in b"".join(out)


def test_a_silent_command_gets_a_line_each_time_a_beat_is_due(tmp_path: Path) -> None:
    """The command stays silent until the clock has been read four times (it waits for a
    file the clock makes then), so the loop sees it running at readings 1 to 3 whatever the
    machine's speed; each reading is one tick and finds a beat due."""
    go = tmp_path / "go"
    ticks = itertools.count()

    def clock() -> float:
        tick = next(ticks)
        if tick == 4:
            go.touch()
        return float(tick)

    out: list[bytes] = []
    wait = f"import os, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.01)"
    code, longest = heartbeat.run(
        [sys.executable, "-c", wait], every=1.0, write=out.append, clock=clock
    )
    text = b"".join(out).decode()
    assert code == 0 and text.count("... still running: python") >= 3
    # A beat comes at the first poll at or after `every`, and counts as output: no gap is
    # longer than `every` plus one poll (one tick here; 8 s + 0.5 s in nox).
    assert longest <= 2.0
