"""platform/k8s: every manifest is valid against the Kubernetes schemas (bundled with the
kubernetes-validate package, so this runs offline), the overlays render with Kustomize,
the processes match the Celery queues, and every setting the code reads is wired in (or
listed below with the reason it is not)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "platform" / "k8s"
KUBERNETES_VERSION = "1.30"  # the oldest release the manifests target (autoscaling/v2, ...)
APP_PACKAGES = ("config", "common", "projects", "annotator", "training", "deployments")

# Settings the code reads that the cluster leaves to their defaults, and why.
NOT_WIRED = {
    "DJANGO_SETTINGS_MODULE": "set by the code itself (config.settings)",
    "TESSERA_GPU_MEMORY_GB": "detected from the GPU at run time; set it to override",
    "TESSERA_TORCH_THREADS": "torch's default follows the pod's CPU limit; set it to override",
    "TESSERA_SAM_CHECKPOINT": "looked up in TESSERA_WEIGHTS_DIR by file name",
    "TESSERA_SAM_DECODER_THREADS": "defaults to the CPUs the pod sees",
    "TESSERA_INFERENCE_MAX_BATCH": "8 on CUDA, 1 on CPU: depends on the device",
    "TESSERA_CSP": "the default policy fits the built frontend; set it to loosen or tighten",
    "DJANGO_SECURE_SSL_REDIRECT": "follows TESSERA_HTTPS",
    "DJANGO_SECURE_HSTS_SECONDS": "follows TESSERA_HTTPS",
    "DJANGO_SECURE_COOKIES": "follows TESSERA_HTTPS",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "off: it binds every subdomain; opt in per installation",
    "DJANGO_SECURE_HSTS_PRELOAD": "off: browsers' preload lists are hard to leave; opt in per installation",
    "TESSERA_IMPORT_S3_ENDPOINT_URL": "defaults to S3_ENDPOINT_URL",
    "TESSERA_IMPORT_S3_REGION": "defaults to S3_REGION",
    "TESSERA_IMPORT_S3_ACCESS_KEY_ID": "defaults to S3_ACCESS_KEY_ID (add it to the Secret for another account)",
    "TESSERA_IMPORT_S3_SECRET_ACCESS_KEY": "defaults to S3_SECRET_ACCESS_KEY (likewise)",
    "TESSERA_RESTART_BACKOFF_S": "config/supervisor.py (`make run`); Kubernetes restarts pods itself",
    "TESSERA_RESTART_BACKOFF_MAX_S": "config/supervisor.py (`make run`); Kubernetes restarts pods itself",
}


def _documents(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _base_documents() -> list[dict]:
    docs = []
    for path in sorted((K8S / "base").glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += _documents(path.read_text())
    return docs


def _kustomize(directory: Path) -> list[dict]:
    kubectl, kustomize = shutil.which("kubectl"), shutil.which("kustomize")
    if not (kubectl or kustomize):
        pytest.skip("neither kubectl nor kustomize is installed: overlays not rendered "
                    "(the base files are validated on their own)")
    command = [kustomize, "build", str(directory)] if kustomize else [kubectl, "kustomize", str(directory)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return _documents(out.stdout)


def _validate(docs: list[dict]) -> None:
    assert docs
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def _containers(doc: dict) -> list[dict]:
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec", {}) or spec.get("jobTemplate", {}).get("spec", {})
    return pod.get("containers", []) + pod.get("initContainers", []) if pod else []


def test_base_files_are_valid_kubernetes_objects():
    _validate(_base_documents())


@pytest.mark.parametrize("directory", ["base", "overlays/production", "overlays/staging"])
def test_rendered_manifests_are_valid(directory):
    docs = _kustomize(K8S / directory)
    _validate(docs)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("Job", "tessera-migrate") in kinds and ("Deployment", "tessera-beat") in kinds
    assert ("Secret", "tessera-secrets") not in kinds  # applied by hand, never overwritten


def test_production_overlay_changes_what_it_says():
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _kustomize(K8S / "overlays/production")}
    web = docs[("Deployment", "tessera-web")]
    assert web["metadata"]["namespace"] == "tessera" and web["spec"]["replicas"] == 3
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/tessera:1.0.0"
    gpu_volumes = {v["name"]: v for v in docs[("Deployment", "tessera-worker-gpu")]["spec"]["template"]["spec"]["volumes"]}
    assert gpu_volumes["weights"] == {"name": "weights", "persistentVolumeClaim": {
        "claimName": "tessera-weights", "readOnly": True}}
    assert docs[("HorizontalPodAutoscaler", "tessera-worker-inference")]["spec"]["maxReplicas"] == 16


def test_one_worker_deployment_per_queue_and_gpu_workers_on_gpu_nodes():
    from config.celery_app import QUEUES

    docs = {(d["kind"], d["metadata"]["name"]): d for d in _base_documents()}
    for queue in QUEUES:
        worker = docs[("Deployment", f"tessera-worker-{queue}")]
        command = worker["spec"]["template"]["spec"]["containers"][0]["command"]
        assert command[:4] == ["celery", "-A", "config", "worker"]
        assert command[command.index("-Q") + 1] == queue
    gpu = docs[("Deployment", "tessera-worker-gpu")]["spec"]["template"]["spec"]
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert gpu["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    hpa = docs[("HorizontalPodAutoscaler", "tessera-worker-inference")]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "tessera-worker-inference"
    assert docs[("Deployment", "tessera-beat")]["spec"]["replicas"] == 1


def test_web_probes_point_at_the_probe_endpoints():
    from django.urls import resolve

    web = next(d for d in _base_documents() if d["metadata"]["name"] == "tessera-web" and d["kind"] == "Deployment")
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert resolve(container["livenessProbe"]["httpGet"]["path"]).url_name == "health-live"
    assert resolve(container["readinessProbe"]["httpGet"]["path"]).url_name == "health-ready"


def _settings_read_by_code() -> set[str]:
    names: set[str] = set()
    for package in APP_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            names |= set(re.findall(r"[\"']((?:TESSERA|DJANGO)_[A-Z0-9_]+)[\"']", path.read_text()))
    settings_py = (ROOT / "config" / "settings.py").read_text()
    names |= set(re.findall(r"\benv(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]+)\"", settings_py))
    return names


def _settings_wired() -> tuple[set[str], list[str]]:
    """(names the manifests set, $(VAR) references that name nothing defined before)."""
    docs = _base_documents()
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    secret = next(d for d in docs if d["kind"] == "Secret")["stringData"]
    wired, dangling = set(config) | set(secret), []
    for doc in docs:
        for container in _containers(doc):
            defined = set(config) | set(secret) if container.get("envFrom") else set()
            for entry in container.get("env", []):
                for ref in re.findall(r"\$\((\w+)\)", entry.get("value", "")):
                    if ref not in defined:
                        dangling.append(f"{doc['metadata']['name']}: {entry['name']} uses $({ref})")
                defined.add(entry["name"])
                wired.add(entry["name"])
            for arg in container.get("command", []) + container.get("args", []):
                dangling += [f"{doc['metadata']['name']}: command uses $({ref})"
                             for ref in re.findall(r"\$\((\w+)\)", arg) if ref not in defined]
    return wired, dangling


def test_every_setting_the_code_reads_is_wired_in():
    read = _settings_read_by_code()
    assert {"DATABASE_URL", "REDIS_URL", "S3_BUCKET", "DJANGO_SECRET_KEY", "TESSERA_PREDICT_RATE"} <= read
    wired, dangling = _settings_wired()
    missing = sorted(read - wired - set(NOT_WIRED))
    assert not missing, f"settings read by the code but absent from platform/k8s: {missing}"
    assert not dangling
    stale = sorted(set(NOT_WIRED) - read)
    assert not stale, f"NOT_WIRED names settings the code no longer reads: {stale}"
    assert not set(NOT_WIRED) & wired, "a setting is both wired and listed as not wired"
