"""The question bank: YAML in, rounds and questions out, all or nothing."""
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from sqlalchemy import select

from . import question_images
from .bank_yaml import BankError, line_of, mapping, scalar, sequence
from .extensions import db
from .effects import Job, Task, owe
from .links import ensure_links
from .models import SCORING_MODES, Challenge, Question
from .question_types import QUESTION_TYPES

ROUND_KEYS = {"number", "title", "time_limit_seconds", "keep_fraction", "keep_count", "scoring",
              "draw", "questions"}
# each kind takes some of them
QUESTION_KEYS = {"type", "text", "choices", "answer", "points", "image", "alt"}


@dataclass
class RoundSpec:
    number: int
    title: str
    time_limit_seconds: int | None = None
    keep_fraction: float = 0.5
    keep_count: int | None = None
    scoring: str = "accuracy"
    draw: int | None = None  # a pool: each player gets this many of the questions
    questions: list[dict] = field(default_factory=list)
    drawings: dict[str, bytes] = field(default_factory=dict, repr=False)  # its pictures, by key


def _question(node, where: str) -> dict:
    """One question, parsed by its kind's class (`type:`, multiple choice when absent)."""
    spec = mapping(node, where, QUESTION_KEYS)
    kind = "choice"
    if "type" in spec:
        kind = scalar(spec["type"], f"{where} type", str, lambda v: v in QUESTION_TYPES,
                       f"should be one of: {', '.join(QUESTION_TYPES)}")
    return QUESTION_TYPES[kind].parse(spec, where, node)


def _round(node, index: int) -> RoundSpec:
    spec = mapping(node, f"round #{index}", ROUND_KEYS)
    for key in ("number", "title", "questions"):
        if key not in spec:
            raise BankError(line_of(node), f"round #{index} has no '{key}'.")
    number = scalar(spec["number"], "number", int, lambda v: 1 <= v <= 1000,
                    "should be a whole number from 1")
    where = f"round {number}"
    title = scalar(spec["title"], f"{where} title", str, lambda v: 0 < len(v.strip()) <= 200,
                   "should be 1 to 200 characters")
    result = RoundSpec(number=number, title=title.strip())
    if "time_limit_seconds" in spec and spec["time_limit_seconds"].tag != "tag:yaml.org,2002:null":
        result.time_limit_seconds = scalar(spec["time_limit_seconds"],
                                           f"{where} time_limit_seconds", int,
                                           lambda v: 5 <= v <= 86400,
                                           "should be 5 to 86400 seconds")
    if "keep_fraction" in spec:
        result.keep_fraction = scalar(spec["keep_fraction"], f"{where} keep_fraction", float,
                                      lambda v: 0 < v <= 1, "should be more than 0 and at most 1")
    if "keep_count" in spec:
        result.keep_count = scalar(spec["keep_count"], f"{where} keep_count", int,
                                   lambda v: v >= 1, "should be 1 or more")
    if "scoring" in spec:
        result.scoring = scalar(spec["scoring"], f"{where} scoring", str,
                                lambda v: v in SCORING_MODES,
                                f"should be one of {', '.join(SCORING_MODES)}")
    nodes = sequence(spec["questions"], f"{where} questions")
    if not nodes:
        raise BankError(line_of(spec["questions"]), f"{where} has no questions.")
    result.questions = [_question(q, f"{where} question {i}") for i, q in enumerate(nodes, start=1)]
    if "draw" in spec:
        result.draw = _draw(spec["draw"], where, result.questions, nodes)
    return result


def _draw(node, where: str, questions: list[dict], nodes: list) -> int:
    """A pool's `draw: K`: 1 to the number of questions, all worth the same (so no player's draw is
    worth more than another's)."""
    draw = scalar(node, f"{where} draw", int, lambda v: 1 <= v <= len(questions),
                  f"should be 1 to {len(questions)}, the number of its questions")
    for i, (question, q_node) in enumerate(zip(questions, nodes), start=1):
        if question["points"] != questions[0]["points"]:
            # the line of its points (or of the question, when it takes the default)
            points = next((v for k, v in q_node.value if k.value == "points"), q_node)
            raise BankError(line_of(points),
                            f"{where} draws {draw} of its questions per player, so they must "
                            f"all be worth the same: question {i} is worth {question['points']}, "
                            f"question 1 {questions[0]['points']}.")
    return draw


def parse_bank(text: str, folder: Path | None = None) -> list[RoundSpec]:
    """Read and check a whole bank, and the pictures it names in `folder` (the bank file's);
    BankError names the line and the problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise BankError(mark.line + 1 if mark else None,
                        f"not valid YAML: {getattr(exc, 'problem', exc)}")
    if root is None:
        raise BankError(None, "the file is empty; it should start with 'challenges:'.")
    top = mapping(root, "the file", {"challenges"})
    if "challenges" not in top:
        raise BankError(line_of(root), "the file should start with 'challenges:'.")
    nodes = sequence(top["challenges"], "challenges")
    rounds = [_round(node, i) for i, node in enumerate(nodes, start=1)]
    seen = {}
    for spec, node in zip(rounds, top["challenges"].value):
        if spec.number in seen:
            raise BankError(line_of(node), f"round {spec.number} appears twice.")
        seen[spec.number] = spec
    for spec in rounds:
        spec.drawings = question_images.prepare(spec.questions, folder)
    return sorted(rounds, key=lambda r: r.number)


def _same_questions(challenge: Challenge, spec: RoundSpec) -> bool:
    current = [{"kind": q.kind, "text": q.text, "choices": q.choices, "answer": q.answer,
                "points": q.points, **({"images": q.images} if q.images else {})}
               for q in challenge.questions]
    return current == spec.questions


def apply_bank(rounds: list[RoundSpec]) -> list[str]:
    """Make the database match the bank (idempotent); returns what changed. The caller commits."""
    existing = {c.number: c for c in db.session.scalars(select(Challenge))}
    changes, restyled = [], []
    for number, challenge in sorted(existing.items()):
        if number not in {r.number for r in rounds}:
            if not challenge.is_draft:
                raise BankError(None, f"round {number} is {challenge.status} and cannot be "
                                      "removed from the bank.")
            db.session.delete(challenge)
            changes.append(f"removed round {number}")
    for spec in rounds:
        challenge = existing.get(spec.number)
        settings = {k: getattr(spec, k) for k in ("title", "time_limit_seconds", "keep_fraction",
                                                  "keep_count", "scoring", "draw")}
        if challenge is None:
            challenge = Challenge(number=spec.number, **settings)
            db.session.add(challenge)
            changes.append(f"added round {spec.number} ({len(spec.questions)} questions)")
        elif not challenge.is_draft:
            if (not _same_questions(challenge, spec)
                    or any(getattr(challenge, k) != v for k, v in settings.items())):
                raise BankError(None, f"round {spec.number} is {challenge.status}: its settings "
                                      "and questions can no longer change.")
            continue
        else:
            changed = [k for k, v in settings.items() if getattr(challenge, k) != v]
            for key in changed:
                setattr(challenge, key, settings[key])
            if not _same_questions(challenge, spec):
                challenge.questions.clear()
                db.session.flush()
                changed.append("questions")
            if changed:
                changes.append(f"updated round {spec.number}: {', '.join(changed)}")
            if {"title", "questions", "draw"} & set(changed):
                restyled.append(challenge)
        if not challenge.questions:
            challenge.questions.extend(Question(position=i, **q)
                                       for i, q in enumerate(spec.questions, start=1))
    db.session.flush()
    # Last, once the bank is known to fit: storage down raises, and the caller rolls back.
    question_images.store({k: v for spec in rounds for k, v in spec.drawings.items()})
    ensure_links()
    if restyled:  # stored forms show the title and questions: render them again
        owe(Job(Task.REGENERATE_FORMS, (None, [c.id for c in restyled]),
                description="forms of rounds whose questions changed"))
    return changes
