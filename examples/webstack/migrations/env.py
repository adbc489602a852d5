"""Alembic environment: online migrations against $DATABASE_URL through psycopg 3."""

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)

from app.settings import DATABASE_URL  # noqa: E402 - prepend_sys_path puts the app on the path

url = DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1).replace(
    "postgres://", "postgresql+psycopg://", 1
)


def run_migrations_online() -> None:
    """Run every pending revision in one transaction."""
    engine = create_engine(url, poolclass=pool.NullPool, connect_args={"connect_timeout": 5})
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=False)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
