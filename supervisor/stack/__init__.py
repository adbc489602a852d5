"""What a Python web stack needs: Postgres and Redis probes, migrations and their lock, Celery heartbeats."""
