"""check-in codes and times, help requests

Revision ID: 0002_checkin_helpdesk
Revises: 0001
Create Date: 2026-11-23

"""
import secrets

from alembic import op
import sqlalchemy as sa


revision = "0002_checkin_helpdesk"
down_revision = "0001"
branch_labels = None
depends_on = None

# As quiz.models.new_checkin_code (copied: a migration must not change when the app's code does).
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def upgrade():
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.add_column(sa.Column("checkin_code", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("checked_in_at", sa.DateTime(), nullable=True))
    # Players who registered before this migration get a code too.
    participant = sa.table("participant", sa.column("id", sa.Integer),
                           sa.column("checkin_code", sa.String))
    connection = op.get_bind()
    for (pid,) in connection.execute(sa.select(participant.c.id)).all():
        code = "".join(secrets.choice(ALPHABET) for _ in range(10))
        connection.execute(participant.update().where(participant.c.id == pid)
                           .values(checkin_code=code))
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.alter_column("checkin_code", existing_type=sa.String(length=16), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_participant_checkin_code"),
                                          ["checkin_code"])

    op.create_table(
        "help_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("reply", sa.String(length=500), nullable=True),
        sa.Column("resolved_by", sa.String(length=80), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"],
                                name=op.f("fk_help_request_participant_id_participant"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_help_request")),
    )
    with op.batch_alter_table("help_request", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_help_request_participant_id"), ["participant_id"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_help_request_status"), ["status"], unique=False)


def downgrade():
    with op.batch_alter_table("help_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_help_request_status"))
        batch_op.drop_index(batch_op.f("ix_help_request_participant_id"))
    op.drop_table("help_request")
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_participant_checkin_code"), type_="unique")
        batch_op.drop_column("checked_in_at")
        batch_op.drop_column("checkin_code")
