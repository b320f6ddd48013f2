"""player windows: each player's time limit runs from their own Start

Revision ID: 0014_player_windows
Revises: 0013_email_channel
Create Date: 2026-12-06

"""
from alembic import op
import sqlalchemy as sa


revision = "0014_player_windows"
down_revision = "0013_email_channel"
branch_labels = None
depends_on = None


def upgrade():
    # When the player's own time is up (their Start + the round's limit, cut at the round's latest
    # close); None until they press Start, or in a round without a time limit.
    with op.batch_alter_table("form_link", schema=None) as batch_op:
        batch_op.add_column(sa.Column("window_ends_at", sa.DateTime(), nullable=True))
    # Seconds the organizer gave the round on top of its limit (players starting later get them).
    with op.batch_alter_table("challenge", schema=None) as batch_op:
        batch_op.add_column(sa.Column("extra_seconds", sa.Integer(), server_default="0",
                                      nullable=False))


def downgrade():
    with op.batch_alter_table("challenge", schema=None) as batch_op:
        batch_op.drop_column("extra_seconds")
    with op.batch_alter_table("form_link", schema=None) as batch_op:
        batch_op.drop_column("window_ends_at")
