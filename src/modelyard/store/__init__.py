"""Metadata persistence: SQLAlchemy Core tables, Alembic migrations, the engine."""
