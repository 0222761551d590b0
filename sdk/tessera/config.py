"""Where the client finds its server and token: arguments first, then the environment
(``TESSERA_URL``, ``TESSERA_TOKEN``), then the config file that ``tessera login`` writes
(``$TESSERA_CONFIG``, else ``$XDG_CONFIG_HOME/tessera/config.json``, else
``~/.config/tessera/config.json``)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from tessera.errors import ConfigurationError


def config_path() -> Path:
    if os.environ.get("TESSERA_CONFIG"):
        return Path(os.environ["TESSERA_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "tessera" / "config.json"


@dataclass(frozen=True)
class Settings:
    url: str
    token: str | None


def load_settings(url: str | None = None, token: str | None = None) -> Settings:
    """Resolve URL and token (arguments > environment > config file)."""
    stored: dict = {}
    path = config_path()
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"Cannot read {path}: {exc}", code="bad_config") from None
    url = url or os.environ.get("TESSERA_URL") or stored.get("url")
    token = token or os.environ.get("TESSERA_TOKEN") or stored.get("token")
    if not url:
        raise ConfigurationError(
            "No Tessera URL: pass url=, set TESSERA_URL, or run `tessera login`.", code="no_url")
    return Settings(url=url.rstrip("/"), token=token)


def save_settings(settings: Settings) -> Path:
    """Write the config file, readable by its owner only (it holds a token)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": settings.url, "token": settings.token}, f, indent=2)
    os.chmod(path, 0o600)
    return path
