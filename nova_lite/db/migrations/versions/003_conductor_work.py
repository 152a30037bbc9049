"""Conductor work records, for takeover from dead conductors.

Revision ID: 003
Revises: 002
"""

from alembic import op
import sqlalchemy as sa

revision = '003'
down_revision = '002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'conductor_work',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('instance_uuid', sa.String(36), nullable=False),
        sa.Column('action', sa.String(32), nullable=False),
        sa.Column('step', sa.String(32), nullable=False),
        sa.Column('host', sa.String(255)),
        sa.Column('dest', sa.String(255)),
        sa.Column('conductor_host', sa.String(255), nullable=False),
        sa.Column('takeovers', sa.Integer, nullable=False),
        sa.Column('finished_at', sa.DateTime),
        sa.Column('created_at', sa.DateTime, nullable=False),
        sa.Column('updated_at', sa.DateTime))
    op.create_index('ix_conductor_work_unfinished', 'conductor_work',
                    ['finished_at', 'conductor_host'])
