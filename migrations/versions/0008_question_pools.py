"""question pools: a round may ask each player `draw` of its questions, drawn per player

Revision ID: 0008_question_pools
Revises: 0007_results_owed
Create Date: 2026-12-08

"""
from alembic import op
import sqlalchemy as sa


revision = "0008_question_pools"
down_revision = "0007_results_owed"
branch_labels = None
depends_on = None


def upgrade():
    # Rounds from before this revision ask every question: NULL.
    with op.batch_alter_table("challenge") as batch:
        batch.add_column(sa.Column("draw", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("challenge") as batch:
        batch.drop_column("draw")
