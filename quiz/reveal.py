"""The reveal: once a closed round is final (it can no longer be reopened: quiz/undo.is_final), the
projector steps through its questions — the question, the right answer, how the room answered —
and then shows the leaderboard; players see their answers beside the right ones on their report.

Which step the projector shows lives on the round (reveal_step, moved by the console, and
reveal_moved_at), so every projector shows the same step and a reloaded one comes back to it. With
REVEAL_SECONDS_PER_QUESTION set, the step also moves on by itself, computed from those two and the
clock (nothing is written as time passes).

The counts come from the stored answers in one grouped query. Answers are stored as the chosen
choices' texts (quiz/question_types.py: a choice's opaque value and its position differ per player,
its text does not), so a choice is counted by its identity; a pool asks each player only some of
its questions, so a question's shares are over the players who answered it. Shadow-league answers
count too: they are the room's.
"""
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, select, text

from . import rounds, scoring
from .effects import CHANGED, owe
from .errors import QuizError
from .extensions import db
from .models import Challenge, Message, Question, Submission
from .notify import RESULT_KINDS
from .undo import is_final

# (question id as text, the answer as JSON text, submissions): every distinct answer to every
# question of the round, counted. SQLite and PostgreSQL spell "each key of a JSON object" apart.
COUNTS_SQL = {
    "sqlite": "SELECT a.key, a.value, count(*) FROM submission s, json_each(s.answers) a "
              "WHERE s.challenge_id IN :challenge_ids GROUP BY a.key, a.value",
    "postgresql": "SELECT a.key, a.value::text, count(*) FROM submission s, "
                  "json_each(s.answers::json) a WHERE s.challenge_id IN :challenge_ids "
                  "GROUP BY a.key, a.value::text",
}


@dataclass
class ChoiceCount:
    text: str
    count: int
    percent: int  # of the players who answered the question
    right: bool


@dataclass
class Tally:
    """How the room answered one question."""

    question: Question
    answered: int = 0  # players who were asked it and answered (a pool asks some of them)
    right: int = 0  # of those, how many had it exactly right
    picks: Counter = field(default_factory=Counter)  # choice text → how many picked it

    @property
    def right_percent(self) -> int:
        return round(100 * self.right / self.answered) if self.answered else 0

    @property
    def choices(self) -> list[ChoiceCount]:
        """A bar per choice, in the bank's order."""
        return [ChoiceCount(choice, self.picks[choice],
                            round(100 * self.picks[choice] / self.answered) if self.answered else 0,
                            choice in self.question.answer)
                for choice in self.question.choices]


def revealed_questions(challenge: Challenge) -> list[Question]:
    """The questions the reveal steps through, in the bank's order (photo questions have no
    choices to show)."""
    return [q for q in challenge.questions if q.kind == "choice"]


def tallies(challenge: Challenge) -> list[Tally]:
    """How the room answered each of the round's choice questions: one grouped query."""
    return count_answers(revealed_questions(challenge))


def count_answers(questions: list[Question]) -> list[Tally]:
    """How the room answered each of `questions` (of any rounds): one grouped query."""
    by_id = {q.id: Tally(q) for q in questions}
    if not by_id:
        return []
    dialect = db.session.get_bind().dialect.name
    statement = text(COUNTS_SQL[dialect]).bindparams(bindparam("challenge_ids", expanding=True))
    rows = db.session.execute(statement, {"challenge_ids": sorted({
        q.challenge_id for q in questions})})
    for key, answer, count in rows:
        tally = by_id.get(int(key))
        if tally is None:
            continue
        chosen = json.loads(answer)
        tally.answered += count
        tally.picks.update({choice: count for choice in set(chosen)})
        if scoring.is_correct(tally.question.answer, chosen):
            tally.right += count
    return list(by_id.values())


def revealable_ids(now: datetime) -> set[int]:
    """The rounds whose answers may show by now: closed and final. One query, and one more only
    while a round is inside its reopen window (were its results sent early?)."""
    rows = db.session.execute(select(Challenge.id, Challenge.number, Challenge.is_draft,
                                     Challenge.closed_at, Challenge.is_closed)).all()
    started = [row.number for row in rows if not row.is_draft]
    closed = {row.id: (row.closed_at, any(n > row.number for n in started))
              for row in rows if row.is_closed}
    final = {id_ for id_, (at, later) in closed.items()
             if is_final(at, now, next_started=later, told=False)}
    waiting = set(closed) - final
    if waiting:
        final |= set(db.session.scalars(select(Message.challenge_id).where(
            Message.challenge_id.in_(waiting), Message.kind.in_(RESULT_KINDS)).distinct()))
    return final


def can_reveal(challenge: Challenge, now: datetime) -> bool:
    """Whether the round's answers may show (projector, console, reports, exports): the one
    check."""
    return challenge.is_closed and challenge.id in revealable_ids(now)


def final_since(challenge: Challenge) -> datetime:
    """When the reveal began by itself: RESULTS_DELAY_SECONDS after the close."""
    return challenge.closed_at + timedelta(seconds=current_app.config["RESULTS_DELAY_SECONDS"])


def current_step(challenge: Challenge, steps: int, now: datetime) -> tuple[int, float | None]:
    """The step shown now (0..steps-1: a question; `steps`: the leaderboard) and the seconds until
    it moves on by itself (None: it waits for the console)."""
    per_question = current_app.config["REVEAL_SECONDS_PER_QUESTION"]
    step = min(max(challenge.reveal_step, 0), steps)
    if per_question <= 0 or step >= steps:
        return step, None
    start = max(challenge.reveal_moved_at or final_since(challenge), final_since(challenge))
    elapsed = max((now - start).total_seconds(), 0.0)
    moved = math.floor(elapsed / per_question)
    step = min(step + moved, steps)
    return step, (None if step >= steps else (moved + 1) * per_question - elapsed)


def stage_context(challenge: Challenge, now: datetime) -> dict | None:
    """What the projector shows of the round's reveal now, or None (not final yet, no questions,
    or stepped through to the leaderboard; or REVEAL_ANSWERS is off)."""
    if not current_app.config["REVEAL_ANSWERS"] or not can_reveal(challenge, now):
        return None
    questions = revealed_questions(challenge)
    step, next_in = current_step(challenge, len(questions), now)
    if step >= len(questions):
        return None
    tally = next(t for t in tallies(challenge) if t.question.id == questions[step].id)
    return {"tally": tally, "step": step, "steps": len(questions),
            "next_in": None if next_in is None else math.ceil(next_in)}


def starts_in(challenge: Challenge, now: datetime) -> int | None:
    """Seconds until the closed round's reveal may start by itself (the projector fetches its stage
    again then: nothing else announces it), or None."""
    if not (current_app.config["REVEAL_ANSWERS"] and challenge.is_closed):
        return None
    wait = (final_since(challenge) - now).total_seconds()
    return math.ceil(wait) if wait > 0 and not can_reveal(challenge, now) else None


def move(number: int, delta: int, now: datetime) -> tuple[Challenge, int, int]:
    """The console's Next (+1) or Previous (-1): the reveal's new step and how many there are (the
    last one is the leaderboard)."""
    challenge = rounds.get_challenge(number, lock=True)
    if not current_app.config["REVEAL_ANSWERS"]:
        raise QuizError("The projector shows no reveal: REVEAL_ANSWERS is off.", code="reveal_off")
    if not challenge.is_closed:
        raise QuizError(f"Round {number} is {challenge.status}: its answers are revealed once it "
                        "has closed.", code="not_closed")
    if not can_reveal(challenge, now):
        delay = current_app.config["RESULTS_DELAY_SECONDS"]
        raise QuizError(f"Round {number} can still be reopened (for {delay:g} s after its close, "
                        "RESULTS_DELAY_SECONDS): its answers show once that is over, or once the "
                        "next round starts.", code="not_final")
    steps = len(revealed_questions(challenge))
    step, _ = current_step(challenge, steps, now)
    challenge.reveal_step = min(max(step + delta, 0), steps)
    challenge.reveal_moved_at = now
    owe(CHANGED)
    return challenge, challenge.reveal_step, steps


def step_label(step: int, steps: int) -> str:
    """The console's words for a step."""
    return "the leaderboard" if step >= steps else f"question {step + 1} of {steps}"


def console_states(challenges: list[Challenge], now: datetime) -> dict[int, str]:
    """For the rounds table: each final round's reveal step, in words (none: REVEAL_ANSWERS is
    off)."""
    if not current_app.config["REVEAL_ANSWERS"]:
        return {}
    final = revealable_ids(now)
    states = {}
    for challenge in challenges:
        if challenge.id in final:
            steps = len(revealed_questions(challenge))
            states[challenge.id] = step_label(current_step(challenge, steps, now)[0], steps)
    return states


@dataclass
class MyAnswer:
    """One question on a player's report: what they picked beside the right answer."""

    question: Question
    picked: list[str]

    @property
    def right(self) -> bool:
        return scoring.is_correct(self.question.answer, self.picked)


def answer_sheets(participant_id: int, now: datetime) -> dict[int, list[MyAnswer]]:
    """A player's answers to each final round they answered, by round id, in the bank's order of
    the questions they were asked (two queries)."""
    final = revealable_ids(now)
    if not final:
        return {}
    rows = db.session.execute(
        select(Submission.answers, Question)
        .join(Question, Question.challenge_id == Submission.challenge_id)
        .where(Submission.participant_id == participant_id, Submission.challenge_id.in_(final),
               Question.kind == "choice")
        .order_by(Question.challenge_id, Question.position)).all()
    sheets: dict[int, list[MyAnswer]] = {}
    for answers, question in rows:
        picked = answers.get(str(question.id))
        if picked is not None:
            sheets.setdefault(question.challenge_id, []).append(MyAnswer(question, picked))
    return sheets
