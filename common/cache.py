"""Django's Redis cache with one client, and so one connection pool, per process.

Django keeps a cache object per thread, and under ASGI the sync part of every request
runs in a thread of its own: with the stock backend each request built a new client and
opened a new Redis connection (redis-py also reads its package metadata on every
connect), which cost the predict endpoint several milliseconds of CPU per request.
The pool is fork-safe (redis-py resets it in a child process)."""
from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache
from django.utils.functional import cached_property

_clients: dict[tuple[str, ...], Any] = {}
_lock = threading.Lock()


class SharedRedisCache(RedisCache):
    @cached_property
    def _cache(self) -> Any:
        key = (*self._servers, repr(sorted(self._options.items())))
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
            return client
