"""A player's answer sheet as the submit sees it: the questions dealt to them (plain rows, each with
their own choice values) and their answers read off the posted form.

The hot path: the round's questions are read once per process (answers._questions); dealing them to
a player is a few keyed hashes per question (quiz/deal.py), no database work.
"""
from dataclasses import dataclass, field, replace

from flask_babel import lazy_gettext as _l

from .deal import choice_values, drawn
from .errors import QuizError, ValidationError
from .models import ByKind
from .question_types import FOREIGN_CHOICE, AnswerError


@dataclass(frozen=True, slots=True)
class Asked(ByKind):
    """A question as the submit needs it (a plain row, no ORM object)."""

    id: int
    kind: str
    choices: list
    answer: list
    points: int
    values: dict = field(default_factory=dict)  # this player's choice values → choice index


def deal_sheet(questions: list[Asked], code: str, seed: int, draw: int | None,
               secret: str) -> list[Asked]:
    """The questions the link `code` was dealt (a pool's draw, in their order), each with its
    choice values."""
    return [replace(q, values=choice_values(secret, code, q.id, len(q.choices)))
            for q in drawn(questions, seed, draw)]


def parse_answers(questions: list[Asked], form, files=None) -> list:
    """Each question's answer, in question order, read by its kind; ValidationError says what to
    fix."""
    known = {f"q{q.id}" for q in questions}
    if any(key.startswith("q") and key not in known
           for key in [*form.keys(), *(files or {}).keys()]):
        raise QuizError(_l("These answers are for questions that are not in this round "
                                "(not on your page). Reload the page."),
                        code="unknown_question", status=422)
    errors, answers, refused = {}, [], []
    for number, question in enumerate(questions, start=1):
        try:
            answers.append(question.type.read(question, form, files, number))
        except AnswerError as error:
            errors[f"q{question.id}"] = error.message
            refused.append(error)
            answers.append(None)
    if errors:
        # A photo over the limit (413) says the limit; a choice from another page says what to do.
        first = min(refused, key=lambda e: (e.status != 413, e.code != FOREIGN_CHOICE))
        urgent = first.status == 413 or first.code == FOREIGN_CHOICE
        error = ValidationError(errors, first.message if urgent
                                else _l("Some answers need another look."))
        error.status = first.status
        raise error
    return answers
