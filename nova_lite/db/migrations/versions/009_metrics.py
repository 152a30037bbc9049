"""Observability: ``services.metrics_address`` (each process's /metrics
listener, for ``nova-lite-manage metrics targets``) and ``host_clocks``
(each host's clock offset to the database server's clock, which corrects
the RPC queue times).

Revision ID: 009
Revises: 008
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '009'
down_revision = '008'
branch_labels = None
depends_on = None

DateTime = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql',
                                      'mariadb')


def upgrade():
    with op.batch_alter_table('services') as batch:
        batch.add_column(sa.Column('metrics_address', sa.String(255)))
    op.create_table(
        'host_clocks',
        sa.Column('host', sa.String(255), primary_key=True),
        sa.Column('offset_ms', sa.Float, nullable=False),
        sa.Column('bound_ms', sa.Float, nullable=False),
        sa.Column('measured_by', sa.String(255)),
        sa.Column('updated_at', DateTime, nullable=False),
    )


def downgrade():
    op.drop_table('host_clocks')
    with op.batch_alter_table('services') as batch:
        batch.drop_column('metrics_address')
