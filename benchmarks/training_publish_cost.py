"""What live publishing costs a training run: the platform's own run path
(`training.runner.training_run_execute`: metric rows in the database, run updates,
heartbeat, and a Channels group_send per logged step to a real Redis layer with a
listener in the group) with publishing on, against the same path with publishing off,
interleaved in the same process. Throughput is wall-clock images/s from the first to the
last logged step (every step is logged here, the worst case; runs log every 10 by default). Target (issue 7): publishing costs <= 5%.

Usage: python benchmarks/training_publish_cost.py [--steps 60] [--rounds 5] [--batch 16]
Writes benchmarks/results/training_publish_cost.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "training_publish_cost.json"))
    args = parser.parse_args()

    var = Path(tempfile.mkdtemp(prefix="tessera-bench-"))
    os.environ.update({"TESSERA_VAR_DIR": str(var), "TESSERA_MEDIA_ROOT": str(var / "media"),
                       "TESSERA_TORCH_THREADS": "1", "DJANGO_SETTINGS_MODULE": "config.settings"})
    os.environ.pop("DATABASE_URL", None)
    from config.embedded import redis_url_ensured

    with redis_url_ensured(var):
        result = _run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


def _run(args) -> dict:
    import django

    django.setup()
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from projects.demo import demo_seed
    from training import events
    from training.models import MetricPoint, TrainingRun
    from training.runner import training_run_execute
    from training.services import workflow_create

    project = demo_seed(images=args.images, size=64).project
    config = {"family": "segformer", "variant": "tiny", "resolution": [64, 64],
              "batch_size": args.batch, "steps": args.steps + 1, "lr": 3e-3,
              "schedule": "constant", "log_interval": 1, "eval_interval": 10**6,
              "checkpoint_every_n_steps": 0, "pretrained": "none"}
    workflow = workflow_create(project=project, user=None, name="bench", config=config)
    layer = get_channel_layer()
    received: list[int] = []

    def one_run(publish: bool) -> float:
        run = TrainingRun.objects.create(project=project, workflow=workflow, config=workflow.config,
                                         total_steps=workflow.config["steps"])
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(events.run_group(run.pk), channel)
        if publish:
            training_run_execute(run_id=run.pk)
        else:
            with mock.patch.object(events, "_send"):
                training_run_execute(run_id=run.pk)
        run.refresh_from_db()
        assert run.status == "completed", run.error
        received.append(_drain(layer, channel))
        # Wall clock between the first and the last logged step: unlike the trainer's own
        # images/s (data + step only) this includes what every on_log costs (metric row,
        # run update, heartbeat, publishing).
        points = list(MetricPoint.objects.filter(run=run, kind="train").order_by("step"))
        first, last = points[0], points[-1]
        return ((last.step - first.step) * args.batch
                / (last.values["elapsed_s"] - first.values["elapsed_s"]))

    on, off = [], []
    for _ in range(args.rounds):
        off.append(one_run(publish=False))
        on.append(one_run(publish=True))
    return {
        "benchmark": "training_publish_cost",
        "model": "segformer/tiny", "resolution": [64, 64], "batch_size": args.batch,
        "logged_steps_per_run": args.steps + 1, "rounds": args.rounds, "device": "cpu",
        "publishing_on_images_per_second": {"median": statistics.median(on), "all": on},
        "publishing_off_images_per_second": {"median": statistics.median(off), "all": off},
        "on_over_off": statistics.median(on) / statistics.median(off),
        "on_over_off_per_round_median": statistics.median(a / b for a, b in zip(on, off, strict=True)),
        "messages_received_per_run": received,
        "target": "on_over_off >= 0.95",
    }


def _drain(layer, channel: str) -> int:
    import asyncio

    from asgiref.sync import async_to_sync

    async def count() -> int:
        n = 0
        while True:
            try:
                await asyncio.wait_for(layer.receive(channel), timeout=0.5)
                n += 1
            except TimeoutError:
                return n

    return async_to_sync(count)()


if __name__ == "__main__":
    main()
