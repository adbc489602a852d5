"""The example web stack: FastAPI + Celery worker and beat + Postgres + Redis + Alembic."""
