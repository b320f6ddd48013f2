"""Scoring modes: accuracy (points per right answer) and speed (Kahoot-style)."""
import pytest

from quiz.scoring import is_correct, score_marks, speed_points


def score(questions, chosen, mode, response_time, time_limit):
    """Mark each answer against its question's correct choices, then score the marks."""
    marks = [(is_correct(expected, picked), points)
             for (expected, points), picked in zip(questions, chosen, strict=True)]
    return score_marks(marks, mode, response_time, time_limit)

QUESTIONS = [(["S3"], 1), (["RDS", "DynamoDB"], 2)]


@pytest.mark.parametrize("chosen, points, correct", [
    ([["S3"], ["RDS", "DynamoDB"]], 3, 2),
    ([["S3"], ["DynamoDB", "RDS"]], 3, 2),
    ([["S3"], ["RDS"]], 1, 1),
    ([["EC2"], ["RDS", "DynamoDB", "Lambda"]], 0, 0),
])
def test_accuracy(chosen, points, correct):
    result = score(QUESTIONS, chosen, "accuracy", 10.0, 60)
    assert (result.points, result.correct) == (points, correct)


def test_accuracy_ignores_time():
    fast = score(QUESTIONS, [["S3"], ["RDS"]], "accuracy", 1.0, 60)
    slow = score(QUESTIONS, [["S3"], ["RDS"]], "accuracy", 59.0, 60)
    assert fast.points == slow.points == 1


@pytest.mark.parametrize("seconds, expected", [(0, 1000), (30, 750), (60, 500), (600, 500)])
def test_speed_points_decay_to_half_at_the_limit(seconds, expected):
    assert speed_points(seconds, 60) == expected


def test_speed_mode_weights_each_correct_answer_by_its_points():
    result = score(QUESTIONS, [["S3"], ["RDS", "DynamoDB"]], "speed", 30.0, 60)
    assert (result.points, result.correct) == (750 * 3, 2)
    assert score(QUESTIONS, [["EC2"], ["RDS"]], "speed", 0.0, 60).points == 0


def test_speed_without_time_limit_gives_full_points():
    assert speed_points(1000, None) == 1000


def test_partial_multi_answer_is_wrong():
    assert not is_correct(["RDS", "DynamoDB"], ["RDS"])
