"""shredded players marked by `shredded_at` (not by their email); audit entries say which player
they name

Revision ID: 0010_fair_shred
Revises: 0009_fair_sessions
Create Date: 2026-12-08

"""
from alembic import op
import sqlalchemy as sa


revision = "0010_fair_shred"
down_revision = "0009_fair_sessions"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("participant") as batch:
        batch.add_column(sa.Column("shredded_at", sa.DateTime(), nullable=True))
    # Shredded before this revision: a shred's phone placeholder, which no phone typed at
    # registration can be (E.164). Their audit entries already lost their names or never get them.
    op.execute(sa.text("UPDATE participant SET shredded_at = CURRENT_TIMESTAMP "
                       "WHERE phone LIKE 'shredded-%'"))
    with op.batch_alter_table("audit_entry") as batch:
        batch.add_column(sa.Column("participant_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_audit_entry_participant_id_participant"), "participant",
                                 ["participant_id"], ["id"], ondelete="SET NULL")


def downgrade():
    with op.batch_alter_table("audit_entry") as batch:
        batch.drop_constraint(op.f("fk_audit_entry_participant_id_participant"),
                              type_="foreignkey")
        batch.drop_column("participant_id")
    with op.batch_alter_table("participant") as batch:
        batch.drop_column("shredded_at")
