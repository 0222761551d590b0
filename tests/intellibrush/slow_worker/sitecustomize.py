"""Test hook, not product code: put this folder first on a Celery worker's PYTHONPATH
and Python imports this module at start-up; every SAM embedding that worker computes
then takes ``TESSERA_TEST_EMBED_DELAY_S`` seconds longer, as a large model does.

Used by tests/intellibrush/test_api.py to keep a precompute backlog busy long enough to
see where an on-demand click lands in the gpu queue. The queue, priorities, locks and
job slicing stay the real ones; only the time an embedding takes is stretched.
"""

import os
import time

from annotator.intellibrush.sam import SamEngine

_DELAY_S = float(os.environ.get("TESSERA_TEST_EMBED_DELAY_S", "0"))
_compute_embedding = SamEngine.compute_embedding


def _slow_compute_embedding(self, image):
    time.sleep(_DELAY_S)
    return _compute_embedding(self, image)


SamEngine.compute_embedding = _slow_compute_embedding
