"""The rehearsal's measurements and its go/no-go table (quiz/rehearse.py plays the event)."""
import math
import threading
from collections import Counter
from dataclasses import dataclass, field

# p99 latency each step must stay under for a GO (milliseconds); the goals
# where it sets one.
THRESHOLDS_MS = {"register": 200, "open": 500, "start": 500, "questions": 500, "submit": 250,
                 "start round": 1000, "end round": 1000}


def nearest_rank(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100), or None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Tally:
    """Everything measured, shared by the threads (counts change under `lock`; list appends are
    atomic)."""

    latencies: dict[str, list[float]] = field(
        default_factory=lambda: {step: [] for step in THRESHOLDS_MS})
    errors: Counter = field(default_factory=Counter)
    # round → players whose submit got a 303
    accepted: dict[int, set[int]] = field(default_factory=dict)
    duplicates: int = 0
    lost: int = 0
    registrations: int = 0
    submits: int = 0
    register_seconds: float = 0.0
    play_seconds: float = 0.0
    rounds: list[dict] = field(default_factory=list)
    winner_id: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, what: str) -> None:
        with self.lock:
            self.errors[what] += 1


def verdict(tally: Tally, slack: float = 1.0) -> tuple[list[tuple[str, str, str, bool]], bool]:
    """Rows of (what, measured, goal, met) and GO (every goal met); latency goals multiplied by
    `slack`."""
    rows = [("registrations/s", f"{tally.registrations / max(tally.register_seconds, 1e-9):.1f}",
             "", True),
            ("submits/s", f"{tally.submits / max(tally.play_seconds, 1e-9):.1f}", "", True)]
    for step, limit in THRESHOLDS_MS.items():
        values = [v * 1000 for v in tally.latencies[step]]
        p50, p95, p99 = (nearest_rank(values, q) for q in (50, 95, 99))
        measured = "-" if p99 is None else f"{p50:.0f} / {p95:.0f} / {p99:.0f} ms (n={len(values)})"
        rows.append((f"{step} p50/p95/p99", measured, f"p99 ≤ {limit * slack:g} ms",
                     p99 is None or p99 <= limit * slack))
    errors = sum(tally.errors.values())
    rows += [("lost", str(tally.lost), "0", tally.lost == 0),
             ("duplicates", str(tally.duplicates), "0", tally.duplicates == 0),
             ("errors",
              str(errors) + (f" ({', '.join(f'{k} ×{v}' for k, v in tally.errors.items())})"
                             if errors else ""),
              "0", errors == 0),
             ("winner", str(tally.winner_id) if tally.winner_id else "none", "one",
              tally.winner_id is not None)]
    return rows, all(met for *_, met in rows)


def format_table(tally: Tally, slack: float = 1.0) -> str:
    """The go/no-go table, rounds first."""
    lines = ["round  players  no-shows  submitted  kept  out (no answer / ranked)"]
    lines += [f"{r['challenge']:>5}  {r['players']:>7}  {r['no_shows']:>8}  {r['submitted']:>9}  "
              f"{r['kept']:>4}  {r['eliminated_unanswered']} / {r['eliminated_ranked_out']}"
              for r in tally.rounds]
    rows, go = verdict(tally, slack)
    width = max(len(r[0]) for r in rows)
    lines += ["", f"{'measure':<{width}}  {'measured':<40}  goal"]
    lines += [(f"{what:<{width}}  {measured:<40}  {goal:<18} "
               f"{'' if not goal else 'ok' if met else 'MISSED'}").rstrip()
              for what, measured, goal, met in rows]
    lines += ["", "GO" if go else "NO-GO"]
    return "\n".join(lines)
