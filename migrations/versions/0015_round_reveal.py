"""round reveal: which step of a closed round's reveal the projector shows

Revision ID: 0015_round_reveal
Revises: 0014_player_windows
Create Date: 2026-12-06

"""
from alembic import op
import sqlalchemy as sa


revision = "0015_round_reveal"
down_revision = "0014_player_windows"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("challenge", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reveal_step", sa.Integer(), server_default="0",
                                      nullable=False))
        batch_op.add_column(sa.Column("reveal_moved_at", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("challenge", schema=None) as batch_op:
        batch_op.drop_column("reveal_moved_at")
        batch_op.drop_column("reveal_step")
