"""confirmation owed: a player who joins is owed a confirmation SMS with their results page,
recorded in the row that registers them

Revision ID: 0012_confirmation_owed
Revises: 0011_staff_roles
Create Date: 2026-12-06

"""
from alembic import op
import sqlalchemy as sa


revision = "0012_confirmation_owed"
down_revision = "0011_staff_roles"
branch_labels = None
depends_on = None


def upgrade():
    # Players who joined before this revision were never promised one: nothing is owed.
    with op.batch_alter_table("participant") as batch:
        batch.add_column(sa.Column("confirmation_owed", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade():
    with op.batch_alter_table("participant") as batch:
        batch.drop_column("confirmation_owed")
