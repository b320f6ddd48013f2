"""sponsor consent: a separate, optional box for being contacted by sponsors

Revision ID: 0005_sponsor_consent
Revises: 0004_shadow_league
Create Date: 2026-11-23

"""
from alembic import op
import sqlalchemy as sa


revision = "0005_sponsor_consent"
down_revision = "0004_shadow_league"
branch_labels = None
depends_on = None


def upgrade():
    # Nobody registered so far was asked: no one is a sponsor lead until they say yes.
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sponsor_consent", sa.Boolean(), server_default=sa.false(),
                                      nullable=False))


def downgrade():
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.drop_column("sponsor_consent")
