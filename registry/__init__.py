"""registry: the people enrolled, their bracelets, every search, and who may see what.

`models.py` holds the tables (SQLAlchemy 2, typed); `db.py` opens a database (SQLite in the data
folder by default, with WAL and foreign keys on; PostgreSQL by URL) and runs the Alembic
migrations in `migrations/`.

Knows nothing of ``receiver``, ``locator``, ``ui`` or ``firmware_sim``.
"""
