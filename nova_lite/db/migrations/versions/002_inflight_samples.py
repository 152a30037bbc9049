"""Inflight probe samples.

Revision ID: 002
Revises: 001
"""

from alembic import op
import sqlalchemy as sa

revision = '002'
down_revision = '001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'inflight_samples',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('created_at', sa.DateTime, nullable=False),
        sa.Column('topic', sa.String(255), nullable=False),
        sa.Column('host', sa.String(255)),
        sa.Column('binary', sa.String(255)),
        sa.Column('to_service', sa.Float),
        sa.Column('in_service', sa.Float),
        sa.Column('greenthread_overhead', sa.Float),
        sa.Column('from_service', sa.Float),
        sa.Column('total', sa.Float),
        sa.Column('clock_offset', sa.Float),
        sa.Column('skew', sa.Boolean, nullable=False),
        sa.Column('greenthreads', sa.Integer),
        sa.Column('timed_out', sa.Boolean, nullable=False),
        sa.Column('error', sa.String(255)))
    op.create_index('ix_inflight_samples_created_at', 'inflight_samples',
                    ['created_at'])
