"""Scoring a submission: pure functions, server side only."""
from dataclasses import dataclass

# Kahoot-style speed scoring: a correct answer earns up to this many points...
SPEED_MAX_POINTS = 1000
# ...decaying linearly to half of it at the time limit.
SPEED_MIN_SHARE = 0.5


@dataclass(frozen=True)
class Score:
    points: int
    correct: int


def is_correct(expected: list[str], chosen: list[str]) -> bool:
    """Right when exactly the correct choices were picked (one, or several)."""
    return set(expected) == set(chosen)


def speed_points(response_time: float, time_limit: float | None) -> int:
    """Points for one correct answer in `speed` mode, from the round's response time."""
    if not time_limit:
        return SPEED_MAX_POINTS
    share = min(max(response_time / time_limit, 0.0), 1.0)
    return round(SPEED_MAX_POINTS * (1 - share * (1 - SPEED_MIN_SHARE)))


def score_marks(marks: list[tuple[bool, int]], mode: str, response_time: float,
                time_limit: float | None) -> Score:
    """Score answers already marked right or wrong (any question kind): (right, points) per
    question."""
    if mode == "speed":
        per_answer = speed_points(response_time, time_limit)
        points = sum(per_answer * pts for ok, pts in marks if ok)
    else:
        points = sum(pts for ok, pts in marks if ok)
    return Score(points=points, correct=sum(ok for ok, _ in marks))
