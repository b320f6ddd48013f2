"""How a status column is stored, and the room PostgreSQL leaves for the close's updates."""
from enum import StrEnum

from sqlalchemy import Enum
from sqlalchemy.orm import mapped_column

SCORING_MODES = ("accuracy", "speed")
ELIMINATION_REASONS = ("unanswered", "ranked_out", "disqualified")
# Free space PostgreSQL leaves in each page of the two tables the close updates row by row, so the
# new row versions fit beside the old (HOT: no index entries written). Every submission of a round
# gets its rank (half a page free); half the players still in go out in a round. Measured:
# bench/end_of_round.py.
SUBMISSION_FILLFACTOR = 50
PARTICIPANT_FILLFACTOR = 60


def status_column(statuses: type[StrEnum], default: StrEnum, **options):
    """A status column: its lowercase value in a VARCHAR(10), as ever (no native enum, no CHECK: no
    migration), read back as the enum member (a str, so JSON and templates see the same words)."""
    stored = Enum(statuses, native_enum=False, length=10, values_callable=_values)
    return mapped_column(stored, default=default, **options)


def _values(statuses: type[StrEnum]) -> list[str]:
    return [member.value for member in statuses]
