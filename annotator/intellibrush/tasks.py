"""Celery tasks of IntelliBrush (SAM embeddings on the gpu queue)."""
