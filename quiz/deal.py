"""What each player is dealt in a round: which questions (a pool draws `draw` of them), in which
order, each question's choices in which order, and the opaque value each choice is sent back as.

Everything follows from the player's link, so nothing of it is stored: its seed (random, never
shown) draws and orders; its code, keyed with SECRET_KEY, names the choices. The live page, the
stored form and the submit compute the same hand. A value is a keyed hash of (link code, question,
choice): it differs per player, per round and per choice, and neither it nor a choice's position
says which choice is right; a value from another page (another player's, another round's, made up)
is simply not among this link's. Pure functions: no database, no app.
"""
import hashlib
import random
from collections.abc import Sequence
from functools import lru_cache
from typing import TypeVar

T = TypeVar("T")
# 8 bytes, 16 hex digits: guessing one of a question's values takes ~10^18 tries, and two choices of
# one player's question share a value with odds of about 1 in 10^17.
VALUE_BYTES = 8


@lru_cache(maxsize=4)
def _mac(secret: str):
    """A keyed BLAKE2b to copy per value (keyed BLAKE2 is a MAC, as HMAC is, and ~4× faster: the
    submit computes every choice's value of the player's questions)."""
    key = hashlib.sha256(b"knockout choice values\0" + secret.encode()).digest()
    return hashlib.blake2b(key=key, digest_size=VALUE_BYTES, person=b"knockout-choice")


def choice_value(secret: str, code: str, question_id: int, index: int) -> str:
    """The value the link `code` sends for choice `index` (its place in the bank) of a question."""
    mac = _mac(secret).copy()
    mac.update(f"{code}:{question_id}:{index}".encode())
    return mac.hexdigest()


def choice_values(secret: str, code: str, question_id: int, count: int) -> dict[str, int]:
    """Value → choice index, for one question of one link: how the submit reads a choice back."""
    return {choice_value(secret, code, question_id, index): index for index in range(count)}


def drawn(questions: Sequence[T], seed: int, draw: int | None) -> list[T]:
    """A player's questions in their order: `draw` of them from the pool (all when None), drawn and
    shuffled by the link's seed, so the page, the stored form and the submit agree."""
    count = len(questions) if draw is None else min(draw, len(questions))
    return random.Random(f"questions:{seed}").sample(list(questions), count)


def choice_order(seed: int, question_id: int, count: int) -> list[int]:
    """A player's order of a question's choices, as their indexes in the bank."""
    order = list(range(count))
    random.Random(seed * 1_000_003 + question_id).shuffle(order)
    return order
