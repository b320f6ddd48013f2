"""The audit log: every organizer action, shown in the console."""
from .extensions import db
from .models import AuditEntry, Participant


def record(actor: str, action: str, result, detail: str = "", about: Participant | None = None):
    """Log `action` by `actor` in the current transaction and pass `result` through.

    `about`: the player the detail names, so that `privacy shred` can take their name out.
    """
    number = getattr(result, "number", None)
    text = detail or (f"round {number}" if number is not None else "")
    if hasattr(result, "submitted"):
        text += (f": {result.submitted} submitted, {result.kept} kept, "
                 f"{result.unanswered} unanswered, {result.ranked_out} ranked out")
    db.session.add(AuditEntry(actor=actor, action=action, detail=text,
                              participant_id=about.id if about is not None else None))
    return result
