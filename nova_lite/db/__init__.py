"""Database access: SQLAlchemy models, a small API, Alembic migrations."""
