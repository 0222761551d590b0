"""IntelliBrush Celery tasks (gpu queue)."""
