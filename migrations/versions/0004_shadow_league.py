"""shadow league: submissions played after being knocked out

Revision ID: 0004_shadow_league
Revises: 0003_photo_answers
Create Date: 2026-11-23

"""
from alembic import op
import sqlalchemy as sa


revision = "0004_shadow_league"
down_revision = "0003_photo_answers"
branch_labels = None
depends_on = None


def upgrade():
    # Existing submissions are all real ones: the server default marks them so, no data rewrite.
    with op.batch_alter_table("submission", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shadow", sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        # Only the shadow league's rows: real submissions (and the close's rank updates) never
        # touch it.
        batch_op.create_index("ix_submission_shadow", ["participant_id"], unique=False,
                              postgresql_where=sa.text("shadow IS true"),
                              sqlite_where=sa.text("shadow IS 1"))


def downgrade():
    with op.batch_alter_table("submission", schema=None) as batch_op:
        batch_op.drop_index("ix_submission_shadow")
        batch_op.drop_column("shadow")
