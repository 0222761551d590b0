"""The deployment API end to end vs the bare runtimes, on this CPU.

SegFormer-B0 (random weights, built from its config) at 512x512 is stored as an artifact,
deployed through the API (runtime ``onnxruntime``) and served by a real stack: the
embedded redis-server, daphne (web) and a Celery inference worker with a thread pool
(``-P threads -c 2``, 8 lane threads). In the same run, in this process, in alternating rounds (the
machine is shared, its load drifts within minutes):

  (a) a plain transformers eager forward loop (batch 1, a preprocessed tensor);
  (b) a bare ``onnxruntime.InferenceSession.run`` loop on the same fp32 export.

Figures: images/s through ``POST /api/v1/deployments/{id}/predict/`` (multipart PNG,
``Authorization: Bearer``) with several concurrent clients; p50 latency of one request at
a time vs p50 of the runtime's own forward (b). The HTTP figures include everything a
client pays: upload, PNG decode and checks, the queue hop, pre/postprocessing, RLE of
each class and JSON. The baselines are forward passes only.

Usage:  python benchmarks/inference_http.py [--threads 2] [--clients 4] [--requests 64]
        [--sequential 25] [--max-batch N] [--max-wait-ms MS] [--cpu-instances N]
Writes benchmarks/results/inference_http.json and prints a summary.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.client import HTTPConnection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _multipart(image: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
            f"filename=\"image.png\"\r\nContent-Type: image/png\r\n\r\n").encode()
    body += image + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


class Client:
    """One keep-alive HTTP connection."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.conn = HTTPConnection("127.0.0.1", port, timeout=300)
        self.headers = headers

    def request(self, method: str, path: str, body: bytes | None = None,
                content_type: str = "application/json") -> tuple[int, dict]:
        headers = {**self.headers, "Content-Type": content_type}
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else {})


def _wait_port(port: int, timeout: float = 120) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port}")


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads of each runtime")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--requests", type=int, default=64,
                        help="HTTP requests in the throughput rounds (2 x clients per round)")
    parser.add_argument("--sequential", type=int, default=25,
                        help="latency rounds: one bare forward, then one request")
    parser.add_argument("--max-wait-ms", type=float, default=None,
                        help="dynamic batching wait (default: the platform's)")
    parser.add_argument("--max-batch", type=int, default=None,
                        help="dynamic batching: most images per forward (default: the platform's)")
    parser.add_argument("--cpu-instances", type=int, default=None,
                        help="forwards side by side on the CPU (default: the platform's)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "inference_http.json"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tessera-bench-http-"))
    env = {
        **os.environ,
        "TESSERA_VAR_DIR": str(work / "var"), "TESSERA_MEDIA_ROOT": str(work / "var" / "media"),
        "TESSERA_CACHE_PREFIX": f"bench-{uuid.uuid4().hex[:6]}",
        "TESSERA_INFERENCE_THREADS": str(args.threads), "TESSERA_TORCH_THREADS": str(args.threads),
        **{name: str(value) for name, value in (
            ("TESSERA_INFERENCE_MAX_WAIT_MS", args.max_wait_ms),
            ("TESSERA_INFERENCE_MAX_BATCH", args.max_batch),
            ("TESSERA_INFERENCE_CPU_INSTANCES", args.cpu_instances)) if value is not None},
        "TESSERA_PREDICT_RATE": "100000/min", "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    os.environ.update(env)
    from config.embedded import redis_url_ensured
    from tests.processes import stop_process_groups

    procs: list[subprocess.Popen] = []
    with redis_url_ensured(work / "var") as redis_url:
        env["REDIS_URL"] = redis_url
        try:
            return _run(args, work, env, procs)
        finally:
            stop_process_groups(procs)

def _run(args, work: Path, env: dict[str, str], procs: list[subprocess.Popen]) -> int:
    import django

    django.setup()
    import torch
    from django.core.management import call_command
    from PIL import Image
    from rest_framework.authtoken.models import Token

    from config.embedded import free_port
    from deployments.exports import artifact_create_from_dir
    from deployments.runtime import export
    from deployments.runtime.artifact import ArtifactMeta, SemanticLogitsModel, write_artifact
    from deployments.runtime.ort import ort_session
    from deployments.runtime.processing import preprocess
    from projects import services as project_services
    from projects.synthetic import SYNTHETIC_CLASSES, make_dataset
    from tests import factories
    from training.modeling.registry import IMAGENET_MEAN, IMAGENET_STD, build_model, get_spec

    torch.set_num_threads(args.threads)
    call_command("migrate", verbosity=0)
    _log("building SegFormer-B0 (random weights) and storing it as an artifact")
    owner = factories.user_create("bench")
    project = project_services.project_create(user=owner, name="bench")
    classes = [{"index": 0, "name": "background", "color": "#000000"}]
    classes += [{"index": i + 1, "name": n, "color": c} for i, (n, c) in enumerate(SYNTHETIC_CLASSES)]
    meta_doc = {"format": 1, "family": "segformer", "variant": "b0", "classes": classes,
                "resolution": [512, 512], "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    torch.manual_seed(0)
    model = build_model(get_spec("segformer", "b0"), num_labels=len(classes), pretrained="none").eval()
    write_artifact(model, meta_doc, work / "artifact")
    artifact = artifact_create_from_dir(project=project, directory=work / "artifact",
                                        meta=json.loads((work / "artifact" / "tessera.json").read_text()),
                                        name="b0", user=owner)
    token = Token.objects.create(user=owner).key

    port = free_port()
    _log("starting daphne and the inference worker")
    log_dir = work / "var"
    for name, cmd in {
        "web": [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                "config.asgi:application"],
        "worker": [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "inference",
                   "-P", "threads", "-c", "2", "-n", "bench-inference@%h", "-l", "warning",
                   "--without-gossip", "--without-mingle", "--without-heartbeat"],
    }.items():
        log = open(log_dir / f"{name}.log", "w")  # noqa: SIM115
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))
    _wait_port(port)
    user_client = Client(port, {"Authorization": f"Token {token}"})
    deadline = time.monotonic() + 180
    while True:  # the worker announces itself a few seconds after it starts
        status, body = user_client.request("POST", "/api/v1/deployments/", json.dumps(
            {"artifact": artifact.pk, "runtime": "onnxruntime"}).encode())
        if status == 201 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert status == 201, body
    deployment_id = body["id"]
    _log("deploying (ONNX export + warm-up in the worker)")
    while body["status"] == "deploying":
        time.sleep(0.5)
        _, body = user_client.request("GET", f"/api/v1/deployments/{deployment_id}/")
    assert body["status"] == "ready", body
    load_ms = body["load_ms"]
    status, key = user_client.request("POST", f"/api/v1/deployments/{deployment_id}/keys/",
                                      json.dumps({"name": "bench"}).encode())
    assert status == 201, key
    headers = {"Authorization": f"Bearer {key['key']}"}
    url = f"/api/v1/deployments/{deployment_id}/predict/"
    # The floor: the same request to a deployment that is not ready is refused (409) after
    # authentication, throttling, multipart parsing and the image header check, i.e.
    # everything but the queue hop and the worker.
    from deployments import api_keys
    from deployments.models import Deployment

    parked = Deployment.objects.create(project=project, artifact=artifact, name="parked",
                                       runtime="onnxruntime", status=Deployment.Status.DEPLOYING)
    _, parked_key = api_keys.api_key_create(deployment=parked, user=owner)
    parked_url = f"/api/v1/deployments/{parked.pk}/predict/"

    image = make_dataset(1, seed=5, sizes=((512, 512),))[0].image
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    body_bytes, content_type = _multipart(buffer.getvalue())

    # Baselines in this process (while the server is idle).
    meta = ArtifactMeta.from_dict(meta_doc)
    onnx_path = work / "b0.onnx"
    export.export_onnx(model, meta, onnx_path)
    session = ort_session(onnx_path, threads=args.threads)
    batch = preprocess([image], meta.resolution, meta.mean, meta.std)
    tensor = torch.from_numpy(batch)
    wrapper = SemanticLogitsModel(model).eval()

    def eager() -> None:
        with torch.inference_mode():
            wrapper(tensor)

    def bare_ort() -> None:
        session.run(None, {"pixel_values": batch})

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) * 1000

    server_timings: list[dict[str, float]] = []

    def one_request(client: Client) -> float:
        start = time.perf_counter()
        status, payload = client.request("POST", url, body_bytes, content_type)
        assert status == 200, payload
        server_timings.append(payload["timing_ms"])
        return (time.perf_counter() - start) * 1000

    def http_burst(n: int) -> tuple[float, list[float]]:
        """n requests from args.clients concurrent clients -> (seconds, latencies)."""
        latencies: list[float] = []
        lock = threading.Lock()
        remaining = [n]

        def client_loop() -> None:
            client = Client(port, headers)
            while True:
                with lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                ms = one_request(client)
                with lock:
                    latencies.append(ms)

        threads = [threading.Thread(target=client_loop) for _ in range(args.clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - start, latencies

    # Other processes share this machine and its load drifts by 2-5x within minutes, so
    # every figure is taken in short alternating rounds and compared round by round.
    _log("warm-up")
    seq_client = Client(port, headers)
    for _ in range(2):
        eager(), bare_ort(), one_request(seq_client)
    _log(f"latency: {args.sequential} rounds of (bare ORT forward, one HTTP request), then "
         "refused requests")
    ort_ms, sequential_ms, floor_ms, small_floor_ms = [], [], [], []
    floor_client = Client(port, {"Authorization": f"Bearer {parked_key}"})
    server_timings.clear()
    for _ in range(args.sequential):
        ort_ms.append(timed(bare_ort))
        sequential_ms.append(one_request(seq_client))
    for _ in range(args.sequential):
        start = time.perf_counter()
        status, _ = floor_client.request("POST", parked_url, body_bytes, content_type)
        assert status == 409, status
        floor_ms.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        status, _ = floor_client.request("POST", parked_url, b"{}")
        assert status == 409, status
        small_floor_ms.append((time.perf_counter() - start) * 1000)
    sequential_server = list(server_timings)
    rounds = max(1, args.requests // (2 * args.clients))
    per_round = 2 * args.clients
    _log(f"throughput: {rounds} rounds of (eager x2, bare ORT x{per_round}, "
         f"HTTP x{per_round} from {args.clients} clients)")
    eager_ips, ort_ips, http_ips_rounds, latencies = [], [], [], []
    eager_ms = []
    cpu = {"bare_ort": 0.0, "web": 0.0, "worker": 0.0, "clients": 0.0}
    for _ in range(rounds):
        samples = [timed(eager) for _ in range(2)]
        eager_ms += samples
        eager_ips.append(2000 / sum(samples))
        before = time.process_time()
        ort_ips.append(per_round * 1000 / sum(timed(bare_ort) for _ in range(per_round)))
        cpu["bare_ort"] += time.process_time() - before
        before = {"web": _cpu_s(procs[0].pid), "worker": _cpu_s(procs[1].pid),
                  "clients": time.process_time()}
        seconds, lat = http_burst(per_round)
        cpu["web"] += _cpu_s(procs[0].pid) - before["web"]
        cpu["worker"] += _cpu_s(procs[1].pid) - before["worker"]
        cpu["clients"] += time.process_time() - before["clients"]
        http_ips_rounds.append(per_round / seconds)
        latencies += lat

    eager_p50, ort_p50 = statistics.median(eager_ms), statistics.median(ort_ms)
    seq_p50 = statistics.median(sequential_ms)
    http_ips = statistics.median(http_ips_rounds)
    ratio_eager = statistics.median([h / e for h, e in zip(http_ips_rounds, eager_ips, strict=True)])
    ratio_ort = statistics.median([h / o for h, o in zip(http_ips_rounds, ort_ips, strict=True)])
    overhead = statistics.median([h / o - 1 for h, o in zip(sequential_ms, ort_ms, strict=True)])
    result = {
        "benchmark": "inference_http",
        "model": "segformer-b0 (random weights), 512x512, runtime onnxruntime fp32",
        "machine": {"cpu_count": os.cpu_count(), "threads": args.threads,
                    "python": platform.python_version(), "torch": torch.__version__,
                    "onnxruntime": __import__("onnxruntime").__version__,
                    "load_average_at_end": os.getloadavg()},
        "setup": {"clients": args.clients, "rounds": rounds, "requests_per_round": per_round,
                  "worker": "celery -P threads -c 2, 8 lane threads; HotModels max_batch "
                            f"{args.max_batch or 'default'}, max_wait_ms "
                            f"{'default' if args.max_wait_ms is None else args.max_wait_ms}, "
                            f"cpu_instances {args.cpu_instances or 'default'}",
                  "request": f"multipart PNG {len(buffer.getvalue())} bytes, Bearer key",
                  "deployment_load_ms": load_ms,
                  "method": "alternating rounds; ratios are medians of per-round ratios"},
        "baselines": {
            "eager_transformers": {"ms_p50": eager_p50, "images_per_s_rounds": eager_ips},
            "bare_onnxruntime": {"ms_p50": ort_p50, "images_per_s_rounds": ort_ips},
        },
        "http": {
            "concurrent_images_per_s_rounds": http_ips_rounds,
            "concurrent_images_per_s_median": http_ips,
            "concurrent_latency_ms_p50": statistics.median(latencies),
            "concurrent_latency_ms_p90": _p(latencies, 0.9),
            "sequential_latency_ms_p50": seq_p50,
            "sequential_latency_ms_p90": _p(sequential_ms, 0.9),
            # Where one request's time goes (medians): the worker's part (queue wait in the
            # batcher, decode, pre/postprocessing, forward, RLE), the web process's own part
            # (multipart parsing, image check, dispatch and result over Redis), the rest.
            "sequential_breakdown_ms_p50": {
                "worker": statistics.median(t["inference"] for t in sequential_server),
                "web_outside_worker": statistics.median(
                    t["total"] - t["inference"] for t in sequential_server),
                "client_outside_web": statistics.median(
                    c - t["total"] for c, t in zip(sequential_ms, sequential_server, strict=True)),
                "refused_request_floor": statistics.median(floor_ms),
                "refused_empty_json_request": statistics.median(small_floor_ms),
                "bare_ort_forward": ort_p50,
            },
        },
        # CPU time per image in the throughput rounds (all threads of each process): the
        # bare loop's is the forward alone; the worker's minus it is the worker's overhead.
        "cpu_ms_per_image": {name: 1000 * value / (rounds * per_round) for name, value in cpu.items()},
        "ratios": {
            "http_vs_eager_throughput": ratio_eager,
            "http_vs_bare_ort_throughput": ratio_ort,
            "p50_overhead_vs_bare_ort_forward": overhead,
        },
        "targets": {"http_vs_eager_throughput": ">= 2.0", "http_vs_bare_ort_throughput": ">= 0.85",
                    "p50_overhead_vs_bare_ort_forward": "<= 0.15"},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"SegFormer-B0 512x512, {args.threads} threads, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"  eager transformers  {eager_p50:8.1f} ms p50")
    print(f"  bare onnxruntime    {ort_p50:8.1f} ms p50")
    print(f"  HTTP, {args.clients} clients      {http_ips:6.2f} img/s (median round)  "
          f"x{ratio_eager:.2f} eager, x{ratio_ort:.2f} bare ORT (median of round ratios)")
    print(f"  HTTP, one at a time {seq_p50:8.1f} ms p50  (+{100 * overhead:.0f}% vs the bare ORT "
          f"forward of the same round, median)")
    print(f"  one request, p50 parts: {result['http']['sequential_breakdown_ms_p50']}")
    print(f"  CPU ms per image: {result['cpu_ms_per_image']}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
