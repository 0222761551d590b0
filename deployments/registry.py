"""The Redis side shared by the web and the inference worker processes: the client, the
installation's key prefix, and the registry of running inference workers.

Each inference worker writes a small JSON record with a TTL to Redis every few seconds
(``inference_worker_heartbeat``, from ``deployments.tasks``) and removes it on a clean
shutdown; the web side reads them (``inference_workers``) to refuse a deployment no worker
can serve, and to answer 503 at once when no worker is running.
"""
from __future__ import annotations

import json
import os
import socket
import threading
from typing import Any

from django.conf import settings

from common.conf import setting

_redis_lock = threading.Lock()
_redis_client: Any = None


def redis_client() -> Any:
    """This process's Redis client (one connection pool, shared by its threads)."""
    global _redis_client
    with _redis_lock:
        if _redis_client is None:
            import redis

            _redis_client = redis.Redis.from_url(settings.REDIS_URL)
        return _redis_client


def redis_key(name: str) -> str:
    """``name`` under this installation's prefix (TESSERA_CACHE_PREFIX, read at each call:
    tests give workers prefixes of their own)."""
    return f"{setting('TESSERA_CACHE_PREFIX', 'tessera')}:{name}"


def registry_keys() -> tuple[str, str]:
    """(the set of worker names, the prefix of each worker's record)."""
    return redis_key("inference-workers"), redis_key("inference-worker:")


def inference_worker_info(name: str) -> dict[str, Any]:
    """What this process can run: {"name", "pid", "cuda", "onnx_providers", "runtimes"}."""
    import torch

    try:
        import onnxruntime

        providers = list(onnxruntime.get_available_providers())
    except ImportError:
        providers = []
    return {
        "name": name,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "cuda": bool(torch.cuda.is_available()),
        "onnx_providers": providers,
    }


def inference_worker_heartbeat(*, info: dict[str, Any], ttl_s: float) -> None:
    """Announce (or refresh) one inference worker for ``ttl_s`` seconds."""
    names, record = registry_keys()
    client = redis_client()
    pipe = client.pipeline()
    pipe.sadd(names, info["name"])
    pipe.set(record + info["name"], json.dumps(info), px=int(ttl_s * 1000))
    pipe.execute()


def inference_worker_forget(*, name: str) -> None:
    """Remove a worker from the registry (clean shutdown)."""
    names, record = registry_keys()
    client = redis_client()
    pipe = client.pipeline()
    pipe.srem(names, name)
    pipe.delete(record + name)
    pipe.execute()


def inference_workers() -> list[dict[str, Any]]:
    """Inference workers that sent a heartbeat recently: [{"name", "cuda",
    "onnx_providers", ...}]. Names whose record expired are dropped from the set."""
    names_key, record_prefix = registry_keys()
    client = redis_client()
    names = sorted(n.decode() if isinstance(n, bytes) else n for n in client.smembers(names_key))
    if not names:
        return []
    records = client.mget([record_prefix + n for n in names])
    alive, gone = [], []
    for name, record in zip(names, records, strict=True):
        if record is None:
            gone.append(name)
        else:
            alive.append(json.loads(record))
    if gone:
        client.srem(names_key, *gone)
    return alive


def runtime_supported(worker: dict[str, Any], runtime: str, device: str) -> str | None:
    """None when ``worker`` can run (runtime, device); otherwise the reason it cannot."""
    providers = worker.get("onnx_providers") or []
    if runtime.startswith("onnxruntime"):
        wanted = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
        if wanted not in providers:
            return f"onnxruntime there has no {wanted} (has {providers or 'no onnxruntime'})"
        return None
    if device == "cuda" and not worker.get("cuda"):
        return "torch there sees no CUDA device"
    return None

