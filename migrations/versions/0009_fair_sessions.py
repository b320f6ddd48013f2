"""organizer session tokens: logout and a new password revoke every earlier session and
remember-me cookie

Revision ID: 0009_fair_sessions
Revises: 0008_question_pools
Create Date: 2026-12-08

"""
import secrets

from alembic import op
import sqlalchemy as sa


revision = "0009_fair_sessions"
down_revision = "0008_question_pools"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("admin_user") as batch:
        batch.add_column(sa.Column("session_token", sa.String(64), nullable=True))
    # A fresh token each: cookies issued before this revision (ids without a token) stop working.
    connection = op.get_bind()
    for (user_id,) in connection.execute(sa.text("SELECT id FROM admin_user")).all():
        connection.execute(sa.text("UPDATE admin_user SET session_token = :token WHERE id = :id"),
                           {"token": secrets.token_urlsafe(24), "id": user_id})
    with op.batch_alter_table("admin_user") as batch:
        batch.alter_column("session_token", existing_type=sa.String(64), nullable=False)


def downgrade():
    with op.batch_alter_table("admin_user") as batch:
        batch.drop_column("session_token")
