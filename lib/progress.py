"""The CLI's view of a run: a live bar on a terminal, plain lines otherwise, then a summary."""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, TextIO

from lib.store.queries import BatchSummary

if TYPE_CHECKING:  # the runner (and the LLM client under it) is the CLI's to import, when it runs a batch
    from lib.runner import Progress


class ProgressPrinter:
    def __init__(self, stream: TextIO):
        self.stream = stream
        self.live = stream.isatty()
        self._lock = threading.Lock()
        self._drawn = False
        self.spent = 0.0  # what the provider billed so far, as the last line showed

    def update(self, p: Progress) -> None:
        with self._lock:
            self.spent = p.spent
            if self.live:
                width = 24
                filled = int(width * p.done / p.total) if p.total else width
                bar = "#" * filled + "-" * (width - filled)
                self.stream.write(f"\r[{bar}] {p.done}/{p.total} battles  ${p.spent:.6f} of ${p.cap:.2f}  "
                                  f"{p.time_left_s:4.0f}s left ")
                self._drawn = True
            else:
                last = p.last
                score = f" score {last['score']:.1f}" if last.get("score") is not None else ""
                self.stream.write(f"{p.done}/{p.total} done  {last['persona']}: {last['status']}{score}  "
                                  f"${p.spent:.6f} of ${p.cap:.2f}  {p.time_left_s:.0f}s left\n")
            self.stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._drawn:
                self.stream.write("\n")
                self._drawn = False


def _spend(batch: BatchSummary, billed: float | None) -> str:
    """The battles' recorded cost against the cap, and what the provider billed when that differs
    (the progress line shows the billed figure: both lines then name the same amount)."""
    spend = f"${batch['totalCost']:.6f} of ${batch['costCap']:.2f} cap"
    if billed is not None and abs(billed - float(batch["totalCost"])) >= 0.0000005:
        spend += (f" (billed ${billed:.6f}: ${billed - float(batch['totalCost']):.6f} of it in calls not recorded "
                  "on a battle)")
    return spend


def print_summary(batch: BatchSummary, stream: TextIO, billed: float | None = None) -> None:
    label = " (simulated LLM)" if batch.get("simulated") else ""
    rows = [
        ("run", f"{batch['runId']}{label}"),
        ("status", batch["status"]),
        ("battles", f"{batch['battlesStarted']} started, {batch['battlesCompleted']} completed, "
                    f"{batch['battlesFailed']} failed, {batch['battlesTimedOut']} timed out, "
                    f"{batch['battlesKilled']} killed"),
        ("average score", "-" if batch["averageScore"] is None else f"{batch['averageScore']:.1f}"),
        ("breakthroughs", str(batch["breakthroughs"])),
        ("spend", _spend(batch, billed) + (f"; {batch['billingNote']}" if batch.get("billingNote") else "")),
        ("duration", f"{(batch['durationMs'] or 0) / 1000:.1f}s"),
    ]
    error = batch.get("error")
    if error:
        rows.append(("error", error))
    look = batch.get("canary")
    if look:
        diff = "-" if look["diff"] is None else f"{look['diff']:+.1f}"
        interval = "" if look["ci95"] is None else f" [{look['ci95'][0]:+.1f}, {look['ci95'][1]:+.1f}]"
        rows.append(("canary", f"v{look['candidateId']} against v{look['activeId']}: {look['pairs']} of "
                               f"{look['maxPairs']} pairs, difference {diff}{interval}: {look['decision']}"))
        for key in ("message", "note"):
            if look.get(key):
                rows.append(("", look[key]))
    width = max(len(name) for name, _ in rows)
    stream.write("\n".join(f"{name:<{width}}  {value}" for name, value in rows) + "\n")
    for error in batch["errors"]:
        stream.write(f"  ! {error}\n")
