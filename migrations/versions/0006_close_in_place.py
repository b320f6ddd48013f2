"""end of round in place: counts stored at close, no index on the columns the close writes,
fillfactor

Revision ID: 0006_close_in_place
Revises: 0005_sponsor_consent
Create Date: 2026-11-23

"""
import math
from fractions import Fraction

from alembic import op
import sqlalchemy as sa


revision = "0006_close_in_place"
down_revision = "0005_sponsor_consent"
branch_labels = None
depends_on = None

# PostgreSQL only: free space per page, so the close's updates stay in their page
# (as models.py sets them).
FILLFACTORS = {"submission": 50, "participant": 60}


def keep_size(submitters, keep_fraction, keep_count):
    """ranking.keep_size as of this revision (a migration must not follow later changes to the
    app)."""
    if submitters <= 0:
        return 0
    wanted = (keep_count if keep_count is not None
              else math.ceil(Fraction(str(keep_fraction)) * submitters))
    return max(1, min(submitters, wanted))


def upgrade():
    with op.batch_alter_table("challenge", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ranked_count", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("cut_score", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("cut_response_time", sa.Double(), nullable=True))
    backfill()
    with op.batch_alter_table("submission", schema=None) as batch_op:
        batch_op.drop_index("ix_submission_challenge_rank")
        batch_op.create_index("ix_submission_ranking",
                              ["challenge_id", sa.desc("score"), "response_time", "submitted_at",
                               "participant_id"], unique=False)
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.drop_index("ix_participant_eliminated_in")
    if op.get_bind().dialect.name == "postgresql":
        for table, fillfactor in FILLFACTORS.items():
            # Applies to pages written from now on; a VACUUM FULL (or pg_repack) spreads existing
            # rows out.
            op.execute(f"ALTER TABLE {table} SET (fillfactor = {fillfactor})")


def backfill():
    """Rounds closed before this revision: their ranked count and cut line, from the stored
    ranks."""
    connection = op.get_bind()
    closed = connection.execute(sa.text(
        "SELECT id, keep_fraction, keep_count, (SELECT count(*) FROM submission "
        "WHERE submission.challenge_id = challenge.id AND submission.rank IS NOT NULL) "
        "FROM challenge WHERE status = 'closed'")).all()
    for challenge_id, keep_fraction, keep_count, ranked in closed:
        line = connection.execute(sa.text(
            "SELECT score, response_time FROM submission WHERE challenge_id = :id AND rank = :cut"),
            {"id": challenge_id, "cut": keep_size(ranked, keep_fraction, keep_count)}).first()
        connection.execute(sa.text(
            "UPDATE challenge SET ranked_count = :ranked, cut_score = :score, "
            "cut_response_time = :time WHERE id = :id"),
            {"id": challenge_id, "ranked": ranked, "score": line[0] if line else None,
             "time": line[1] if line else None})


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for table in FILLFACTORS:
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.create_index("ix_participant_eliminated_in", ["eliminated_in"], unique=False)
    with op.batch_alter_table("submission", schema=None) as batch_op:
        batch_op.drop_index("ix_submission_ranking")
        batch_op.create_index("ix_submission_challenge_rank", ["challenge_id", "rank"],
                              unique=False)
    # ALTER TABLE … DROP COLUMN, not batch mode: on SQLite a batch copies the table and drops the
    # old one, and dropping `challenge` there would cascade to every round's submissions.
    for column in ("cut_response_time", "cut_score", "ranked_count"):
        op.drop_column("challenge", column)
