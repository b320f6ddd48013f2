"""event look: the event's name, colours, logo and sponsors as set in the console (one row)

Revision ID: 0017_event_look
Revises: 0016_question_images
Create Date: 2026-12-06

"""
from alembic import op
import sqlalchemy as sa


revision = "0017_event_look"
down_revision = "0016_question_images"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "event_look",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("primary", sa.String(7), nullable=False),
        sa.Column("accent", sa.String(7), nullable=False),
        sa.Column("logo_key", sa.String(200), nullable=False),
        sa.Column("sponsors", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def downgrade():
    op.drop_table("event_look")
