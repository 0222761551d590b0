"""URL converters."""
from __future__ import annotations


class IdConverter:
    """A database id in a URL: up to 18 digits, so every match fits a 64-bit integer
    column (Django's ``int`` converter takes any length, and an id past 2**63 reached the
    database as an overflow error, a 500, instead of a 404)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)
