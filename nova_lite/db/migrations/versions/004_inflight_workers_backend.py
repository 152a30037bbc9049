"""Inflight samples keep the service's busy workers and its backend.

Revision ID: 004
Revises: 003
"""

from alembic import op
import sqlalchemy as sa

revision = '004'
down_revision = '003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('inflight_samples') as batch:
        batch.add_column(sa.Column('workers', sa.Integer))
        batch.add_column(sa.Column('backend', sa.String(16)))
