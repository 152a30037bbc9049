"""Clock offsets: each inflight sample's bound, double precision on MySQL.

``inflight_samples.clock_offset`` is the service's clock minus the
database server's (the reference clock); ``clock_offset_bound`` is its
error bound in ms (half the probe's round trip, plus the prober's own
bound to the reference), so that ``inflight report`` can pick the
tightest sample of a window whichever prober took it.  On MySQL/MariaDB
the ``host_clocks`` offsets become DOUBLE, like every other float here
(migration 005).

Revision ID: 010
Revises: 009
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '010'
down_revision = '009'
branch_labels = None
depends_on = None

Float = sa.Float().with_variant(mysql.DOUBLE(asdecimal=False), 'mysql',
                                'mariadb')


def _mysql():
    return op.get_bind().dialect.name in ('mysql', 'mariadb')


def upgrade():
    with op.batch_alter_table('inflight_samples') as batch:
        batch.add_column(sa.Column('clock_offset_bound', Float))
    if _mysql():
        for column in ('offset_ms', 'bound_ms'):
            op.alter_column('host_clocks', column, type_=mysql.DOUBLE(),
                            existing_type=sa.Float(), existing_nullable=False)


def downgrade():
    if _mysql():
        for column in ('offset_ms', 'bound_ms'):
            op.alter_column('host_clocks', column, type_=sa.Float(),
                            existing_type=mysql.DOUBLE(),
                            existing_nullable=False)
    with op.batch_alter_table('inflight_samples') as batch:
        batch.drop_column('clock_offset_bound')
