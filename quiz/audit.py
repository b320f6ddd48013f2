"""The audit log: every organizer action, shown in the console."""
from .extensions import db
from .models import AuditEntry


def record(actor: str, action: str, result, detail: str = ""):
    """Log `action` by `actor` in the current transaction and pass `result` through."""
    number = getattr(result, "number", None)
    text = detail or (f"round {number}" if number is not None else "")
    if hasattr(result, "submitted"):
        text += (f": {result.submitted} submitted, {result.kept} kept, "
                 f"{result.unanswered} unanswered, {result.ranked_out} ranked out")
    db.session.add(AuditEntry(actor=actor, action=action, detail=text))
    return result
