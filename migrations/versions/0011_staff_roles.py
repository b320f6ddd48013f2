"""staff roles: each console account is a host, desk or viewer

Revision ID: 0011_staff_roles
Revises: 0010_fair_shred
Create Date: 2026-12-10

"""
from alembic import op
import sqlalchemy as sa


revision = "0011_staff_roles"
down_revision = "0010_fair_shred"
branch_labels = None
depends_on = None


def upgrade():
    # Every account so far could do everything: they stay hosts, so nothing changes for them.
    with op.batch_alter_table("admin_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("role", sa.String(length=10), server_default="host",
                                      nullable=False))


def downgrade():
    with op.batch_alter_table("admin_user", schema=None) as batch_op:
        batch_op.drop_column("role")
