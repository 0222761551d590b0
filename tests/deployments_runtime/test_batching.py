"""BatchingQueue: concurrent callers share forward passes and each gets its own result."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from deployments.runtime import BatchingQueue, QueueClosed, QueueFull, create_predictor


class Recorder:
    """batch_fn that doubles numbers, remembers batch sizes and takes ``delay`` per call."""

    def __init__(self, delay: float = 0.02) -> None:
        self.delay = delay
        self.batches: list[list[int]] = []
        self.lock = threading.Lock()

    def __call__(self, items: list[int]) -> list[int]:
        time.sleep(self.delay)
        with self.lock:
            self.batches.append(list(items))
        return [2 * x for x in items]


def test_concurrent_callers_are_batched_and_get_their_own_results() -> None:
    fn = Recorder()
    with BatchingQueue(fn, max_batch=8, max_wait_ms=10) as batching:
        barrier = threading.Barrier(32)

        def call(x: int) -> int:
            barrier.wait()
            return batching(x, timeout=10)

        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(call, range(32)))
    assert results == [2 * x for x in range(32)]
    sizes = [len(b) for b in fn.batches]
    assert sum(sizes) == 32 and max(sizes) <= 8
    assert len(fn.batches) <= 8  # 32 simultaneous items need far fewer than 32 forwards
    assert sorted(x for b in fn.batches for x in b) == list(range(32))
    assert batching.stats()["items"] == 32


def test_a_lone_request_waits_only_the_bounded_time() -> None:
    fn = Recorder(delay=0.0)
    with BatchingQueue(fn, max_batch=8, max_wait_ms=20) as batching:
        batching(1, timeout=5)  # warm the thread
        start = time.perf_counter()
        assert batching(21, timeout=5) == 42
        elapsed = time.perf_counter() - start
    assert 0.015 <= elapsed < 0.5
    assert fn.batches[-1] == [21]


def test_a_failing_batch_fails_its_callers_and_the_queue_goes_on() -> None:
    def fn(items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("unlucky batch")
        return [x + 1 for x in items]

    with BatchingQueue(fn, max_batch=4, max_wait_ms=30) as batching:
        futures = batching.submit_many([12, 13, 14])
        for future in futures:
            with pytest.raises(ValueError, match="unlucky"):
                future.result(timeout=5)
        assert batching(1, timeout=5) == 2


def test_wrong_result_count_is_an_error_for_callers() -> None:
    with BatchingQueue(lambda items: items[:-1], max_batch=4, max_wait_ms=30) as batching:
        futures = batching.submit_many([1, 2])
        with pytest.raises(RuntimeError, match="results for"):
            futures[0].result(timeout=5)


def test_backpressure_and_close() -> None:
    gate = threading.Event()

    def slow(items: list[int]) -> list[int]:
        gate.wait(5)
        return items

    batching = BatchingQueue(slow, max_batch=1, max_wait_ms=0, max_pending=2)
    first = batching.submit(0)  # taken by the worker thread, blocks on the gate
    deadline = time.monotonic() + 5
    while batching.pending and time.monotonic() < deadline:
        time.sleep(0.005)
    queued = batching.submit_many([1, 2])
    with pytest.raises(QueueFull):
        batching.submit(3)
    gate.set()
    batching.close()
    assert [f.result(timeout=5) for f in [first, *queued]] == [0, 1, 2]
    with pytest.raises(QueueClosed):
        batching.submit(4)


def test_batching_a_real_predictor_gives_the_same_masks(
    trained_artifact: Path, val_set, tmp_path: Path
) -> None:
    predictor = create_predictor(trained_artifact, "onnxruntime", cache_dir=tmp_path)
    images = val_set.images[:12]
    expected = [predictor.predict(image) for image in images]
    with BatchingQueue(predictor.predict_batch, max_batch=4, max_wait_ms=20) as batching:
        with ThreadPoolExecutor(12) as pool:
            got = list(pool.map(lambda image: batching(image, timeout=60), images))
        stats = batching.stats()
    for a, b in zip(got, expected, strict=True):
        assert a.shape == b.shape and (a == b).mean() > 0.9999
    assert stats["items"] == 12 and stats["batches"] < 12


def test_workers_run_batches_side_by_side_and_close_cleanly() -> None:
    running, peak, lock = [0], [0], threading.Lock()

    def slow(items: list[int]) -> list[int]:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return [x + 1 for x in items]

    batching = BatchingQueue(slow, max_batch=1, max_wait_ms=0, workers=3)
    with ThreadPoolExecutor(9) as pool:
        results = list(pool.map(lambda x: batching(x, timeout=10), range(9)))
    assert results == [x + 1 for x in range(9)]
    assert peak[0] == 3  # three forwards at once, never more
    pending = batching.submit_many(range(5))  # queued behind nothing: drained on close
    batching.close()
    assert [f.result(timeout=1) for f in pending] == [1, 2, 3, 4, 5]
    assert not any(t.is_alive() for t in batching._threads)
    with pytest.raises(QueueClosed):
        batching.submit(1)
