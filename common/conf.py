"""Reading a Tessera setting that may also be given as an environment variable."""
import os
from collections.abc import Callable
from typing import Any

from django.conf import settings


def setting(name: str, default: Any, cast: Callable[[Any], Any] | None = None) -> Any:
    """settings.NAME, else the environment variable NAME (read now, so a test or a worker
    started with a different environment sees its own value), else default."""
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name)
    if value in (None, ""):
        return default
    return cast(value) if cast else value


def truthy(value: Any) -> bool:
    """A yes/no setting or parameter: True, "1", "true", "yes", "on" (any case)."""
    return str(value).strip().lower() in {"1", "true", "yes", "on"}
