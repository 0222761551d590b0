"""The Tessera client: ``Client(url, token)`` with one namespace per kind of object.

    from tessera import Client
    c = Client.login("http://127.0.0.1:8000", "demo", "tessera-demo")
    project = c.projects.create("shapes")
    c.assets.upload_folder(project.id, "images/")
"""
from __future__ import annotations

import json
import mimetypes
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np

from tessera.config import load_settings
from tessera.errors import ConnectionFailed, OperationFailed, PermissionDenied, TesseraError
from tessera.http import RetryEvent, RetryPolicy, Transport
from tessera.models import (
    ApiKey,
    Artifact,
    Asset,
    Deployment,
    Job,
    LabelClass,
    MaskSet,
    MetricPoint,
    Prediction,
    Project,
    TrainingEvent,
    TrainingRun,
    Workflow,
)
from tessera.png import encode_png
from tessera.rle import encode as rle_encode
from tessera.upload import UploadProgress, UploadReport, media_files, upload_paths

ImageInput = str | Path | bytes | np.ndarray


def _id(obj: Any) -> int:
    """Accept an object from this package or a plain id."""
    return int(getattr(obj, "id", obj))


def _poll(fetch: Callable[[], Any], done: Callable[[Any], bool], *, timeout: float | None,
          interval: float, what: str) -> Any:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if deadline is not None and time.monotonic() > deadline:
            raise TesseraError(f"{what} did not finish within {timeout} s", code="timeout")
        time.sleep(interval)


class _Namespace:
    def __init__(self, client: Client) -> None:
        self._client = client
        self._t = client._transport


class Projects(_Namespace):
    def list(self) -> list[Project]:
        return [Project.from_api(p) for p in self._t.paginate("projects/")]

    def get(self, project: int | Project) -> Project:
        return Project.from_api(self._t.json("GET", f"projects/{_id(project)}/"))

    def create(self, name: str, *, description: str = "", type: str = "segmentation") -> Project:
        body = {"name": name, "description": description, "type": type}
        return Project.from_api(self._t.json("POST", "projects/", json=body))

    def update(self, project: int | Project, **fields: Any) -> Project:
        return Project.from_api(self._t.json("PATCH", f"projects/{_id(project)}/", json=fields))

    def delete(self, project: int | Project) -> None:
        self._t.request("DELETE", f"projects/{_id(project)}/")


class Classes(_Namespace):
    def list(self, project: int | Project) -> list[LabelClass]:
        return [LabelClass.from_api(c) for c in self._t.paginate(f"projects/{_id(project)}/classes/")]

    def create(self, project: int | Project, name: str, color: str | None = None) -> LabelClass:
        body = {"name": name, **({"color": color} if color else {})}
        return LabelClass.from_api(self._t.json("POST", f"projects/{_id(project)}/classes/", json=body))

    def update(self, project: int | Project, label_class: int | LabelClass, **fields: Any) -> LabelClass:
        path = f"projects/{_id(project)}/classes/{_id(label_class)}/"
        return LabelClass.from_api(self._t.json("PATCH", path, json=fields))

    def delete(self, project: int | Project, label_class: int | LabelClass) -> None:
        self._t.request("DELETE", f"projects/{_id(project)}/classes/{_id(label_class)}/")


class Assets(_Namespace):
    def list(self, project: int | Project, *, status: str | None = None, split: str | None = None,
             search: str | None = None) -> list[Asset]:
        params = {k: v for k, v in {"status": status, "split": split, "search": search}.items() if v}
        return [Asset.from_api(a) for a in self._t.paginate(f"projects/{_id(project)}/assets/", params)]

    def get(self, asset: int | Asset) -> Asset:
        return Asset.from_api(self._t.json("GET", f"assets/{_id(asset)}/"))

    def update(self, asset: int | Asset, *, split: str | None = None, status: str | None = None) -> Asset:
        body = {k: v for k, v in {"split": split, "status": status}.items() if v}
        return Asset.from_api(self._t.json("PATCH", f"assets/{_id(asset)}/", json=body))

    def delete(self, asset: int | Asset) -> None:
        self._t.request("DELETE", f"assets/{_id(asset)}/")

    def download(self, asset: int | Asset) -> bytes:
        """The asset's image file, as stored."""
        return self._t.request("GET", f"assets/{_id(asset)}/file/").content

    def upload(self, project: int | Project, paths: Sequence[str | Path], **kwargs: Any) -> UploadReport:
        """Upload these files (see ``upload_folder`` for the options)."""
        return upload_paths(self._client, _id(project), [Path(p) for p in paths], **kwargs)

    def upload_folder(self, project: int | Project, folder: str | Path, *, recursive: bool = True,
                      workers: int = 4, skip_existing: bool = True,
                      progress: Callable[[UploadProgress], None] | None = None) -> UploadReport:
        """Upload every image and video under ``folder``: ``workers`` requests in parallel;
        files whose SHA-256 the project already has are skipped (so an interrupted upload
        resumes where it stopped)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise TesseraError(f"{folder} is not a folder", code="not_a_folder")
        return upload_paths(self._client, _id(project), media_files(folder, recursive),
                            workers=workers, skip_existing=skip_existing, progress=progress)


class Masks(_Namespace):
    def get(self, asset: int | Asset) -> MaskSet:
        return MaskSet.from_api(self._t.json("GET", f"assets/{_id(asset)}/masks/"))

    def set(self, asset: int | Asset, masks: dict[int, np.ndarray] | Sequence[tuple[int, np.ndarray]],
            *, base_revision: int | None = None) -> MaskSet:
        """Replace the asset's masks: ``{class_id: (H, W) bool array}`` or a list of
        ``(class_id, array)`` pairs (several instances of one class). ``base_revision``:
        the revision *number* edited; Conflict (409) if another save came first."""
        pairs = masks.items() if isinstance(masks, dict) else masks
        body: dict[str, Any] = {"masks": [{"class_id": int(cid), "rle": rle_encode(m)} for cid, m in pairs]}
        if base_revision is not None:
            body["base_revision"] = base_revision
        return MaskSet.from_api(self._t.json("PUT", f"assets/{_id(asset)}/masks/", json=body))


class Jobs(_Namespace):
    def get(self, job: int | Job) -> Job:
        return Job.from_api(self._t.json("GET", f"jobs/{_id(job)}/"))

    def wait(self, job: int | Job, *, timeout: float | None = 600, interval: float = 0.5,
             progress: Callable[[Job], None] | None = None) -> Job:
        """Poll until the job succeeds (returned) or fails (OperationFailed)."""
        def fetch() -> Job:
            current = self.get(job)
            if progress:
                progress(current)
            return current

        done = _poll(fetch, lambda j: j.finished, timeout=timeout, interval=interval, what=f"job {_id(job)}")
        if done.status == "failed":
            raise OperationFailed(done.message or "The job failed.", code="job_failed",
                                  details={"job": done.id, "errors": done.errors})
        return done

    def download(self, job: int | Job, dest: str | Path) -> Path:
        return self._client._download(f"jobs/{_id(job)}/download/", dest)


class Imports(_Namespace):
    def start(self, project: int | Project, source: str | Path | bytes, *, format: str,
              name: str | None = None) -> Job:
        """Start importing labels (``format``: coco, labelme, png) from a file path, bytes,
        or an ``s3://bucket/key`` object (needs boto3: ``pip install tessera-client[s3]``)."""
        if isinstance(source, bytes):
            data, name = source, name or "labels.json"  # pass name="x.zip" for a zip
        elif str(source).startswith("s3://"):
            data, name = _read_s3(str(source)), name or str(source).rsplit("/", 1)[-1]
        else:
            path = Path(source)
            data, name = path.read_bytes(), name or path.name
        files = {"file": (name, data, mimetypes.guess_type(name)[0] or "application/octet-stream")}
        body = self._t.json("POST", f"projects/{_id(project)}/imports/", files=files,
                            data={"format": format})
        return Job.from_api(body)

    def run(self, project: int | Project, source: str | Path | bytes, *, format: str,
            timeout: float | None = 600, **kwargs: Any) -> Job:
        """``start`` then wait for the job (OperationFailed if it fails)."""
        job = self.start(project, source, format=format, **kwargs)
        return self._client.jobs.wait(job, timeout=timeout)


def _read_s3(url: str) -> bytes:
    try:
        import boto3
    except ImportError:
        raise TesseraError("Reading s3:// needs boto3: pip install 'tessera-client[s3]'",
                           code="missing_dependency") from None
    bucket, _, key = url[len("s3://"):].partition("/")
    if not bucket or not key:
        raise TesseraError(f"Not an s3://bucket/key URL: {url}", code="bad_url")
    from botocore.exceptions import BotoCoreError, ClientError

    try:  # credentials and endpoint as boto3 finds them (AWS_* variables, ~/.aws, roles)
        return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except (BotoCoreError, ClientError) as exc:
        raise TesseraError(f"Cannot read {url}: {exc}", code="s3_error") from exc


class Exports(_Namespace):
    def download(self, project: int | Project, dest: str | Path, *, format: str = "coco",
                 include_unlabeled: bool = False, images: bool = True, background: bool = False,
                 timeout: float | None = 600) -> Path:
        """Write the dataset zip (``format``: coco, labelme, png) to ``dest``. ``background``
        builds it in a server job first (for big projects), then downloads it."""
        params = {"format": format, "include_unlabeled": str(include_unlabeled).lower(),
                  "images": str(images).lower()}
        path = f"projects/{_id(project)}/export/"
        if not background:
            return self._client._download(path, dest, params=params)
        job = Job.from_api(self._t.json("GET", path, params={**params, "delivery": "job"}))
        self._client.jobs.wait(job, timeout=timeout)
        return self._client.jobs.download(job, dest)


class Workflows(_Namespace):
    def list(self, project: int | Project) -> list[Workflow]:
        return [Workflow.from_api(w) for w in self._t.paginate(f"projects/{_id(project)}/workflows/")]

    def get(self, workflow: int | Workflow) -> Workflow:
        return Workflow.from_api(self._t.json("GET", f"workflows/{_id(workflow)}/"))

    def create(self, project: int | Project, name: str, config: dict[str, Any], *,
               val_fraction: float = 0.2) -> Workflow:
        body = {"name": name, "config": config, "val_fraction": val_fraction}
        return Workflow.from_api(self._t.json("POST", f"projects/{_id(project)}/workflows/", json=body))

    def delete(self, workflow: int | Workflow) -> None:
        self._t.request("DELETE", f"workflows/{_id(workflow)}/")

    def models(self) -> list[dict[str, Any]]:
        """The trainable model families and variants."""
        return self._t.json("GET", "training/models/")


class Trainings(_Namespace):
    def list(self, *, project: int | Project | None = None, status: str | None = None) -> list[TrainingRun]:
        params = {k: v for k, v in {"project": project and _id(project), "status": status}.items() if v}
        return [TrainingRun.from_api(r) for r in self._t.paginate("trainings/", params)]

    def get(self, run: int | TrainingRun) -> TrainingRun:
        return TrainingRun.from_api(self._t.json("GET", f"trainings/{_id(run)}/"))

    def start(self, workflow: int | Workflow) -> TrainingRun:
        return TrainingRun.from_api(self._t.json("POST", "trainings/", json={"workflow": _id(workflow)}))

    def cancel(self, run: int | TrainingRun, *, keep_best: bool = False) -> TrainingRun:
        body = self._t.json("POST", f"trainings/{_id(run)}/cancel/", json={"keep_best": keep_best})
        return TrainingRun.from_api(body)

    def metrics(self, run: int | TrainingRun, *, after: int | None = None,
                kind: str | None = None) -> list[MetricPoint]:
        params = {k: v for k, v in {"after": after, "kind": kind}.items() if v is not None}
        return [MetricPoint.from_api(m) for m in self._t.json("GET", f"trainings/{_id(run)}/metrics/", params=params)]

    def wait(self, run: int | TrainingRun, *, timeout: float | None = 3600, interval: float = 1.0,
             raise_on_failure: bool = True) -> TrainingRun:
        """Poll until the run finishes; OperationFailed if it failed (or was cancelled)."""
        done = _poll(lambda: self.get(run), lambda r: r.finished, timeout=timeout,
                     interval=interval, what=f"training run {_id(run)}")
        if raise_on_failure and done.status != "completed":
            raise OperationFailed(done.error or done.message or f"The run {done.status}.",
                                  code=f"training_{done.status}", details={"run": done.id})
        return done

    def watch(self, run: int | TrainingRun, *, last_step: int = -1, timeout: float | None = None,
              reconnect: bool = True) -> Iterator[TrainingEvent]:
        """Yield the run's live events from its websocket (``ws /ws/trainings/<id>/``):
        first its status and every metric point after ``last_step`` (a replay), then new
        ones as they happen; ends after the status event that finishes the run. A dropped
        connection is reopened from the last step received, so nothing is lost."""
        from websockets.exceptions import ConnectionClosed, InvalidHandshake
        from websockets.sync.client import connect

        run_id = _id(run)
        deadline = None if timeout is None else time.monotonic() + timeout
        base = self._t.base_url
        ws_base = "ws" + base[len("http"):] if base.startswith("http") else base
        while True:
            query = urlencode({"token": self._t.token or "", "last_step": last_step})
            try:
                with connect(f"{ws_base}/ws/trainings/{run_id}/?{query}", origin=base,
                             open_timeout=30, close_timeout=5) as ws:
                    while True:
                        wait = 30.0 if deadline is None else min(30.0, deadline - time.monotonic())
                        if wait <= 0:
                            raise TesseraError(f"no end of run {run_id} within {timeout} s", code="timeout")
                        try:
                            message = ws.recv(timeout=wait)
                        except TimeoutError:
                            current = self.get(run_id)  # quiet for a while: did it end?
                            if current.finished:
                                yield _status_event(current)
                                return
                            continue
                        event = _parse_event(message)
                        if event.kind == "metric" and event.step is not None:
                            last_step = max(last_step, event.step)
                        yield event
                        if event.kind == "status" and event.status in TrainingRun.FINISHED:
                            return
            except InvalidHandshake:
                self.get(run_id)  # raises NotFound / AuthenticationError when that is why
                raise PermissionDenied("The server refused the training websocket (origin or "
                                       "authentication).", code="websocket_refused", status=403) from None
            except (ConnectionClosed, OSError) as exc:
                if not reconnect:
                    raise ConnectionFailed(f"training websocket closed: {exc}",
                                           code="websocket_closed") from exc
            current = self.get(run_id)  # closed by the server: finished, or reconnect
            if current.finished:
                yield _status_event(current)
                return
            time.sleep(1.0)


def _parse_event(message: str | bytes) -> TrainingEvent:
    data = json.loads(message)
    kind = str(data.get("type", "")).removeprefix("training.")
    return TrainingEvent(kind=kind, payload=data.get("payload") or {})


def _status_event(run: TrainingRun) -> TrainingEvent:
    return TrainingEvent(kind="status", payload={"status": run.status, "step": run.step,
                                                 "total_steps": run.total_steps,
                                                 "message": run.message, "error": run.error})


class Artifacts(_Namespace):
    def list(self, *, project: int | Project | None = None) -> list[Artifact]:
        params = {"project": _id(project)} if project is not None else None
        return [Artifact.from_api(a) for a in self._t.paginate("artifacts/", params)]

    def get(self, artifact: int | Artifact) -> Artifact:
        return Artifact.from_api(self._t.json("GET", f"artifacts/{_id(artifact)}/"))

    def delete(self, artifact: int | Artifact) -> None:
        self._t.request("DELETE", f"artifacts/{_id(artifact)}/")

    def export(self, artifact: int | Artifact, dest: str | Path, *, format: str = "onnx",
               timeout: float | None = 900, interval: float = 1.0) -> Path:
        """Download the model as ``format`` (onnx, onnx-int8, torchscript), waiting for the
        server to build it the first time."""
        path = f"artifacts/{_id(artifact)}/export/"
        params = {"format": format}

        def ready() -> bool:
            response = self._t.request("GET", path, params=params, stream=True)
            response.close()
            return response.status_code == 200

        _poll(ready, bool, timeout=timeout, interval=interval, what=f"{format} export")
        return self._client._download(path, dest, params=params)


class Deployments(_Namespace):
    def list(self, *, project: int | Project | None = None, status: str | None = None) -> list[Deployment]:
        params = {k: v for k, v in {"project": project and _id(project), "status": status}.items() if v}
        return [Deployment.from_api(d) for d in self._t.paginate("deployments/", params)]

    def get(self, deployment: int | Deployment) -> Deployment:
        return Deployment.from_api(self._t.json("GET", f"deployments/{_id(deployment)}/"))

    def create(self, artifact: int | Artifact, *, name: str = "", runtime: str = "onnxruntime",
               device: str = "cpu", replicas: int = 1) -> Deployment:
        body = {"artifact": _id(artifact), "name": name, "runtime": runtime, "device": device,
                "replicas": replicas}
        return Deployment.from_api(self._t.json("POST", "deployments/", json=body))

    def delete(self, deployment: int | Deployment) -> None:
        self._t.request("DELETE", f"deployments/{_id(deployment)}/")

    def wait(self, deployment: int | Deployment, *, timeout: float | None = 600,
             interval: float = 1.0) -> Deployment:
        """Poll until it is ready (returned) or failed (OperationFailed)."""
        done = _poll(lambda: self.get(deployment), lambda d: d.status != "deploying",
                     timeout=timeout, interval=interval, what=f"deployment {_id(deployment)}")
        if done.status != "ready":
            raise OperationFailed(done.reason or "The deployment failed.", code="deployment_failed",
                                  details={"deployment": done.id})
        return done


class ApiKeys(_Namespace):
    def list(self, deployment: int | Deployment) -> list[ApiKey]:
        return [ApiKey.from_api(k) for k in self._t.paginate(f"deployments/{_id(deployment)}/keys/")]

    def create(self, deployment: int | Deployment, *, name: str = "", rate: str = "") -> ApiKey:
        """A new key; its secret is in ``.key``, shown this once."""
        body = self._t.json("POST", f"deployments/{_id(deployment)}/keys/", json={"name": name, "rate": rate})
        return ApiKey.from_api(body)

    def revoke(self, deployment: int | Deployment, key: int | ApiKey) -> None:
        self._t.request("DELETE", f"deployments/{_id(deployment)}/keys/{_id(key)}/")


def _image_part(image: ImageInput, index: int) -> tuple[str, bytes, str]:
    if isinstance(image, np.ndarray):
        return f"image{index}.png", encode_png(image), "image/png"
    if isinstance(image, bytes):
        return f"image{index}", image, "application/octet-stream"
    path = Path(image)
    return path.name, path.read_bytes(), mimetypes.guess_type(path.name)[0] or "application/octet-stream"


class Client:
    """A connection to one Tessera server. ``url``/``token`` default to ``TESSERA_URL`` /
    ``TESSERA_TOKEN``, then to the config file written by ``tessera login``.
    ``on_retry`` is called before each wait of a 429/503 retry."""

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 120.0,
                 max_retries: int = 5, backoff: float = 0.5, max_wait: float = 60.0,
                 on_retry: Callable[[RetryEvent], None] | None = None) -> None:
        settings = load_settings(url, token)
        self.url = settings.url
        self._transport = Transport(settings.url, token=settings.token, timeout=timeout,
                                    retry=RetryPolicy(max_retries, backoff, max_wait),
                                    on_retry=on_retry)
        self.projects = Projects(self)
        self.classes = Classes(self)
        self.assets = Assets(self)
        self.masks = Masks(self)
        self.jobs = Jobs(self)
        self.imports = Imports(self)
        self.exports = Exports(self)
        self.workflows = Workflows(self)
        self.trainings = Trainings(self)
        self.artifacts = Artifacts(self)
        self.deployments = Deployments(self)
        self.api_keys = ApiKeys(self)

    @property
    def token(self) -> str | None:
        return self._transport.token

    @classmethod
    def login(cls, url: str, username: str, password: str, **kwargs: Any) -> Client:
        """Exchange a username and password for a token; returns a client using it."""
        client = cls(url, token=None, **kwargs)
        body = client._transport.json("POST", "auth/token/", json={"username": username, "password": password})
        client._transport.token = body["token"]
        return client

    def me(self) -> dict[str, Any]:
        return self._transport.json("GET", "auth/me/")

    def health(self) -> dict[str, Any]:
        return self._transport.json("GET", "health/")

    def predict(self, deployment: int | Deployment, images: ImageInput | Sequence[ImageInput], *,
                api_key: str | None = None, polygons: bool = False,
                png: bool = False) -> Prediction | list[Prediction]:
        """Segment one image (returns a Prediction) or a list of them (a list). Images are
        paths, encoded bytes, or ``(H, W, 3)`` uint8 arrays. ``api_key``: the deployment's
        key (``Bearer``); without it the client's token is used (project members)."""
        single = not isinstance(images, list | tuple)
        items = [images] if single else list(images)
        field = "image" if single else "images"
        files = [(field, _image_part(img, i)) for i, img in enumerate(items)]
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        params = {k: "true" for k, v in {"polygons": polygons, "png": png}.items() if v}
        body = self._transport.json("POST", f"deployments/{_id(deployment)}/predict/", files=files,
                                    params=params, headers=headers)
        if single:
            return Prediction.from_api(body)
        return [Prediction.from_api(r) for r in body["results"]]

    def _download(self, path: str, dest: str | Path, params: dict | None = None) -> Path:
        dest = Path(dest)
        response = self._transport.request("GET", path, params=params, stream=True)
        tmp = dest.with_name(dest.name + ".part")
        with response, tmp.open("wb") as f:
            for chunk in response.iter_content(1 << 20):
                f.write(chunk)
        tmp.replace(dest)
        return dest

