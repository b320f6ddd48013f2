"""question images: a question's picture and its choices' pictures (content hashes, sizes, alt
text), stored in object storage under content-hashed keys

Revision ID: 0016_question_images
Revises: 0015_round_reveal
Create Date: 2026-12-06

"""
from alembic import op
import sqlalchemy as sa


revision = "0016_question_images"
down_revision = "0015_round_reveal"
branch_labels = None
depends_on = None


def upgrade():
    # Questions loaded before this revision have no pictures: NULL.
    with op.batch_alter_table("question") as batch:
        batch.add_column(sa.Column("images", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("question") as batch:
        batch.drop_column("images")
