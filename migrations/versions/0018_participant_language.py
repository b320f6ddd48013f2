"""participant language: the language a player's pages, SMS and emails speak

Revision ID: 0018_participant_language
Revises: 0017_event_look
Create Date: 2026-12-06

"""
from alembic import op
import sqlalchemy as sa


revision = "0018_participant_language"
down_revision = "0017_event_look"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("participant") as batch:
        batch.add_column(sa.Column("language", sa.String(8), nullable=True))


def downgrade():
    with op.batch_alter_table("participant") as batch:
        batch.drop_column("language")
