"""Serializer fields shared by the apps."""
from __future__ import annotations

from typing import Any

from rest_framework import serializers

MAX_ID = 2**63 - 1


class IdField(serializers.IntegerField):
    """A database id (or another number kept in an integer column) sent by a client:
    1..2**63-1 unless told otherwise, so a larger one is a 400 instead of reaching the
    database (SQLite raised an overflow error, a 500)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)
