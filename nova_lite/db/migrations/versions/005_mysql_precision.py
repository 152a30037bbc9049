"""MySQL/MariaDB: microsecond timestamps and double-precision phases.

On MySQL and MariaDB a plain DATETIME keeps whole seconds and a plain FLOAT
is single precision; PostgreSQL and SQLite need no change.

Revision ID: 005
Revises: 004
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '005'
down_revision = '004'
branch_labels = None
depends_on = None

# (table, column, nullable) of every DATETIME column.
_DATETIMES = (
    ('services', 'created_at', False),
    ('services', 'updated_at', True),
    ('services', 'last_seen_up', True),
    ('instances', 'created_at', False),
    ('instances', 'updated_at', True),
    ('inflight_samples', 'created_at', False),
    ('conductor_work', 'finished_at', True),
    ('conductor_work', 'created_at', False),
    ('conductor_work', 'updated_at', True),
)
_FLOATS = ('to_service', 'in_service', 'greenthread_overhead',
           'from_service', 'total', 'clock_offset')


def upgrade():
    if op.get_bind().dialect.name not in ('mysql', 'mariadb'):
        return
    for table, column, nullable in _DATETIMES:
        op.alter_column(table, column, type_=mysql.DATETIME(fsp=6),
                        existing_type=sa.DateTime(),
                        existing_nullable=nullable)
    for column in _FLOATS:
        op.alter_column('inflight_samples', column, type_=mysql.DOUBLE(),
                        existing_type=sa.Float(), existing_nullable=True)
