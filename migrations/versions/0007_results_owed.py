"""results owed: a closed round records in its own transaction that its result SMS are still to be
queued

Revision ID: 0007_results_owed
Revises: 0006_close_in_place
Create Date: 2026-12-06

"""
from alembic import op
import sqlalchemy as sa


revision = "0007_results_owed"
down_revision = "0006_close_in_place"
branch_labels = None
depends_on = None


def upgrade():
    # Rounds closed before this revision had their results queued (or lost) already: nothing is
    # owed.
    with op.batch_alter_table("challenge") as batch:
        batch.add_column(sa.Column("results_due_at", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("challenge") as batch:
        batch.drop_column("results_due_at")
