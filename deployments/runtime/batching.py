"""Dynamic batching: many concurrent callers, one forward pass.

A :class:`BatchingQueue` owns ``workers`` background threads (one by default). Callers
``submit`` items (images) from any thread and get a ``Future``; a free thread takes the
first waiting item, then keeps collecting for at most ``max_wait_ms`` or until
``max_batch`` items are in hand, calls ``batch_fn`` once on the whole list and hands each
caller its own result (or the exception, if the batch failed). With ``max_wait_ms=0``
nothing waits: batches are what queued up while the runtime was busy.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class QueueFull(RuntimeError):
    """More than ``max_pending`` items are waiting: the caller should back off (HTTP 503)."""


class QueueClosed(RuntimeError):
    """The queue was closed; no more items are accepted."""


@dataclass
class _Pending(Generic[T, R]):
    item: T
    future: Future[R]
    enqueued: float


_STOP = object()


class BatchingQueue(Generic[T, R]):
    """Collect concurrent requests into batches for one ``batch_fn`` call.

    Args:
        batch_fn: ``list[item] -> list[result]`` of the same length and order (e.g.
            ``predictor.predict_batch``).
        max_batch: the most items in one call.
        max_wait_ms: how long the first item of a batch waits for companions.
        max_pending: items allowed to wait; beyond it ``submit`` raises :class:`QueueFull`.
        name: thread name.
        workers: threads calling ``batch_fn``, i.e. batches that may run at the same time
            (for runtimes that run several forwards in parallel, e.g. CPU model instances).

    Thread-safe. Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        batch_fn: Callable[[list[T]], Sequence[R]],
        *,
        max_batch: int = 8,
        max_wait_ms: float = 5.0,
        max_pending: int = 1024,
        name: str = "tessera-batching",
        workers: int = 1,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        if workers < 1:
            raise ValueError("workers must be >= 1")
        if max_wait_ms < 0:
            raise ValueError("max_wait_ms must be >= 0")
        self.batch_fn = batch_fn
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self._queue: queue.Queue[_Pending[T, R] | object] = queue.Queue(maxsize=max_pending)
        self._closed = threading.Event()
        self._submit_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self.batch_sizes: Counter[int] = Counter()
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, item: T) -> Future[R]:
        """Queue one item; the future resolves to its result."""
        pending: _Pending[T, R] = _Pending(item, Future(), time.monotonic())
        with self._submit_lock:  # so nothing slips in behind close()'s stop marker
            if self._closed.is_set():
                raise QueueClosed("batching queue is closed")
            try:
                self._queue.put_nowait(pending)
            except queue.Full:
                raise QueueFull(f"{self._queue.maxsize} items already waiting") from None
        return pending.future

    def submit_many(self, items: Sequence[T]) -> list[Future[R]]:
        """Queue several items (e.g. the images of one request) in order."""
        return [self.submit(item) for item in items]

    def __call__(self, item: T, timeout: float | None = None) -> R:
        """Submit and wait for the result (raises the batch's exception, or TimeoutError)."""
        return self.submit(item).result(timeout=timeout)

    @property
    def pending(self) -> int:
        """Items waiting (approximate)."""
        return self._queue.qsize()

    def stats(self) -> dict[str, object]:
        """{"batches": n, "items": n, "batch_sizes": {size: count}}."""
        with self._stats_lock:
            sizes = dict(self.batch_sizes)
        return {
            "batches": sum(sizes.values()),
            "items": sum(size * count for size, count in sizes.items()),
            "batch_sizes": sizes,
        }

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop accepting items, finish what is queued, stop the thread."""
        with self._submit_lock:
            if self._closed.is_set():
                return
            self._closed.set()
        for _ in self._threads:  # may wait for room; the workers keep draining meanwhile
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout)

    def __enter__(self) -> BatchingQueue[T, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- worker thread -------------------------------------------------------------

    def _collect(self, first: _Pending[T, R]) -> tuple[list[_Pending[T, R]], bool]:
        batch = [first]
        deadline = time.monotonic() + self.max_wait
        stop = False
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                nxt = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if nxt is _STOP:
                stop = True
                break
            batch.append(nxt)  # type: ignore[arg-type]
        return batch, stop

    def _run_batch(self, batch: list[_Pending[T, R]]) -> None:
        live = [p for p in batch if p.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            results = list(self.batch_fn([p.item for p in live]))
            if len(results) != len(live):
                raise RuntimeError(
                    f"batch_fn returned {len(results)} results for {len(live)} items"
                )
        except BaseException as exc:  # every caller of the batch gets the failure
            for p in live:
                p.future.set_exception(exc)
            return
        finally:
            with self._stats_lock:
                self.batch_sizes[len(live)] += 1
        for p, result in zip(live, results, strict=True):
            p.future.set_result(result)

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is _STOP:
                break
            batch, stop = self._collect(first)  # type: ignore[arg-type]
            self._run_batch(batch)
        # Drain anything queued before close() so no caller waits forever; stop markers
        # meant for the other workers go back.
        stops = 0
        while True:
            try:
                rest = self._queue.get_nowait()
            except queue.Empty:
                break
            if rest is _STOP:
                stops += 1
            else:
                self._run_batch([rest])  # type: ignore[list-item]
        for _ in range(stops):
            self._queue.put(_STOP)
