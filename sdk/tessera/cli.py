"""The ``tessera`` command: scripts and pipelines on top of :mod:`tessera.client`.

Every command takes ``--json`` (machine-readable output on stdout; errors as
``{"error": {...}}``). Exit codes: see ``EXIT_CODES``."""
from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tessera import errors
from tessera.client import Client
from tessera.config import Settings, config_path, save_settings
from tessera.http import RetryEvent
from tessera.models import ApiObject, TrainingEvent
from tessera.png import hex_to_rgb, write_png
from tessera.upload import UploadProgress

EXIT_CODES = {
    "ok": 0,
    "error": 1,              # anything not listed below
    "usage": 2,              # bad command line (argparse)
    "auth": 3,               # no URL/token, 401 or 403
    "not_found": 4,          # 404
    "failed": 5,             # a training, job, export or deployment ended in failure
    "invalid": 6,            # 400/409/422: the server refused the input
    "unavailable": 7,        # unreachable, or 429/503 after the retries
    "partial": 8,            # upload: some files were refused
}


def _exit_code(exc: errors.TesseraError) -> int:
    table: list[tuple[type, str]] = [
        (errors.ConfigurationError, "auth"), (errors.AuthenticationError, "auth"),
        (errors.PermissionDenied, "auth"), (errors.NotFound, "not_found"),
        (errors.OperationFailed, "failed"), (errors.ValidationError, "invalid"),
        (errors.Conflict, "invalid"), (errors.RateLimited, "unavailable"),
        (errors.ServiceUnavailable, "unavailable"), (errors.ConnectionFailed, "unavailable"),
    ]
    for cls, name in table:
        if isinstance(exc, cls):
            return EXIT_CODES[name]
    if exc.status == 422:
        return EXIT_CODES["invalid"]
    return EXIT_CODES["error"]


class Output:
    def __init__(self, as_json: bool) -> None:
        self.json = as_json

    def result(self, value: Any, human: Callable[[], str] | str | None = None) -> None:
        if self.json:
            print(json.dumps(_plain(value), default=str), flush=True)
        elif human is not None:
            print(human() if callable(human) else human, flush=True)

    def info(self, text: str) -> None:
        """Progress and notes: stderr, so stdout stays parseable."""
        print(text, file=sys.stderr, flush=True)

    def table(self, rows: Sequence[ApiObject], columns: Sequence[str]) -> None:
        if self.json:
            self.result(list(rows))
            return
        data = [[_cell(getattr(r, c, r.raw.get(c))) for c in columns] for r in rows]
        widths = [max([len(c)] + [len(row[i]) for row in data]) for i, c in enumerate(columns)]
        print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
        for row in data:
            print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, ApiObject):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value


def _client(args: argparse.Namespace, out: Output) -> Client:
    def on_retry(event: RetryEvent) -> None:
        why = f"HTTP {event.status}" if event.status else "connection failed"
        out.info(f"{why}; retry {event.attempt} in {event.wait_s:.1f} s")

    client = Client(args.url, args.token, max_retries=args.retries, on_retry=on_retry)
    if not client.token:
        raise errors.ConfigurationError("No token: run `tessera login`, set TESSERA_TOKEN or "
                                        "pass --token.", code="no_token")
    return client


# --- commands ------------------------------------------------------------------------------
def cmd_login(args: argparse.Namespace, out: Output) -> int:
    url = args.url or os.environ.get("TESSERA_URL") or "http://127.0.0.1:8000"
    if args.token:
        client = Client(url, args.token)
    else:
        username = args.username or input("Username: ")
        password = args.password or os.environ.get("TESSERA_PASSWORD") or getpass.getpass("Password: ")
        client = Client.login(url, username, password)
    me = client.me()  # proves the token works before it is saved
    path = save_settings(Settings(url=client.url, token=client.token))
    out.result({"url": client.url, "user": me, "config": str(path)},
               f"Logged in to {client.url} as {me.get('username')}; saved to {path}")
    return 0


def cmd_projects_ls(args, out) -> int:
    out.table(_client(args, out).projects.list(), ["id", "name", "role", "asset_count", "created_at"])
    return 0


def cmd_projects_create(args, out) -> int:
    project = _client(args, out).projects.create(args.name, description=args.description)
    out.result(project, lambda: f"Created project {project.id} {project.name!r}")
    return 0


def cmd_classes_ls(args, out) -> int:
    out.table(_client(args, out).classes.list(args.project), ["id", "index", "name", "color"])
    return 0


def cmd_classes_create(args, out) -> int:
    client = _client(args, out)
    created = [client.classes.create(args.project, name, color=args.color) for name in args.names]
    out.result(created, lambda: "\n".join(f"Created class {c.id} {c.name!r} ({c.color})" for c in created))
    return 0


def _progress_bar(out: Output) -> Callable[[UploadProgress], None]:
    interactive = sys.stderr.isatty()

    def show(p: UploadProgress) -> None:
        width = 30
        frac = p.bytes_done / p.bytes_total if p.bytes_total else 1.0
        bar = "#" * int(frac * width)
        line = (f"[{bar:<{width}}] {p.files_done}/{p.files_total} files "
                f"{p.bytes_done / 1e6:.1f}/{p.bytes_total / 1e6:.1f} MB")
        if interactive:
            end = "\n" if p.files_done == p.files_total else ""
            print("\r" + line, end=end, file=sys.stderr, flush=True)
        else:
            out.info(line)

    return show


def cmd_upload(args, out) -> int:
    client = _client(args, out)
    report = client.assets.upload_folder(args.project, args.dir, recursive=not args.no_recursive,
                                         workers=args.workers, skip_existing=not args.no_skip,
                                         progress=None if args.quiet else _progress_bar(out))
    out.result(report, lambda: (
        f"{len(report.created)} uploaded, {len(report.skipped)} already there (skipped), "
        f"{len(report.duplicates)} duplicates, {len(report.videos)} videos, {len(report.errors)} refused"
        + "".join(f"\n  {e.get('file')}: {e.get('code')}: {e.get('message')}" for e in report.errors)))
    return EXIT_CODES["partial"] if report.errors else 0


def cmd_import(args, out) -> int:
    client = _client(args, out)
    job = client.imports.start(args.project, args.source, format=args.format)
    if not args.no_wait:
        job = client.jobs.wait(job, timeout=args.timeout)
    out.result(job, lambda: f"Import job {job.id}: {job.status} {job.message}".rstrip()
               + "".join(f"\n  {e}" for e in job.errors))
    return 0


def cmd_export(args, out) -> int:
    client = _client(args, out)
    dest = Path(args.output or f"project{args.project}-{args.format}.zip")
    client.exports.download(args.project, dest, format=args.format,
                            include_unlabeled=args.include_unlabeled, images=not args.no_images,
                            background=args.background, timeout=args.timeout)
    out.result({"path": str(dest), "bytes": dest.stat().st_size},
               f"Wrote {dest} ({dest.stat().st_size} bytes)")
    return 0


def _format_event(event: TrainingEvent, total: int | None) -> str | None:
    values = event.values
    if event.kind == "metric":
        formats = {"loss": ".4f", "lr": ".2e"}
        parts = [f"{k} {values[k]:{f}}" for k, f in formats.items() if isinstance(values.get(k), int | float)]
        return f"step {event.step}{f'/{total}' if total else ''}  " + "  ".join(parts)
    if event.kind == "eval":
        miou = values.get("miou")
        return f"step {event.step}  eval mIoU {miou:.4f}" if isinstance(miou, int | float) else f"step {event.step}  eval"
    if event.kind == "status":
        p = event.payload
        return f"status {p.get('status')}" + (f": {p.get('message')}" if p.get("message") else "") + (
            f" ({p.get('error')})" if p.get("error") else "")
    if event.kind == "checkpoint":
        return f"step {event.step}  checkpoint"
    return None


def cmd_train(args, out) -> int:
    client = _client(args, out)
    workflow = _workflow(client, args)
    run = client.trainings.start(workflow)
    out.info(f"Started training run {run.id} (workflow {workflow.id} {workflow.name!r})")
    if args.watch:
        total = run.total_steps or None
        for event in client.trainings.watch(run, timeout=args.timeout):
            if event.kind == "status" and event.payload.get("total_steps"):
                total = event.payload["total_steps"]
            if out.json:
                print(json.dumps({"event": event.kind, **event.payload}), flush=True)
            else:
                line = _format_event(event, total)
                if line:
                    print(line, flush=True)
        run = client.trainings.get(run)
    elif args.wait:
        run = client.trainings.wait(run, timeout=args.timeout, raise_on_failure=False)
    out.result(run, lambda: f"Run {run.id}: {run.status}" + (
        f", artifact {run.artifact}" if run.artifact else "") + (f" ({run.error})" if run.error else ""))
    if (args.watch or args.wait) and run.status != "completed":
        return EXIT_CODES["failed"]
    return 0


def _workflow(client: Client, args):
    if args.config:
        text = Path(args.config[1:]).read_text() if args.config.startswith("@") else args.config
        try:
            config = json.loads(text)
        except ValueError as exc:
            raise errors.TesseraError(f"--config is not JSON: {exc}", code="bad_config") from None
        return client.workflows.create(args.project, args.workflow, config, val_fraction=args.val_fraction)
    if args.workflow.isdigit():
        return client.workflows.get(int(args.workflow))
    matches = [w for w in client.workflows.list(args.project) if w.name == args.workflow]
    if not matches:
        raise errors.NotFound(f"No workflow named {args.workflow!r} in project {args.project}; "
                              "pass --config to create it.", code="not_found", status=404)
    return matches[-1]


def cmd_runs_ls(args, out) -> int:
    runs = _client(args, out).trainings.list(project=args.project, status=args.status)
    out.table(runs, ["id", "project", "workflow", "status", "step", "total_steps", "best_metric",
                     "artifact", "created_at"])
    return 0


def cmd_artifacts_ls(args, out) -> int:
    out.table(_client(args, out).artifacts.list(project=args.project),
              ["id", "project", "run", "name", "family", "variant", "size_bytes"])
    return 0


def cmd_deploy(args, out) -> int:
    client = _client(args, out)
    deployment = client.deployments.create(args.artifact, name=args.name, runtime=args.runtime,
                                           device=args.device, replicas=args.replicas)
    if not args.no_wait:
        out.info(f"Deployment {deployment.id}: waiting until it is ready")
        deployment = client.deployments.wait(deployment, timeout=args.timeout)
    result: dict[str, Any] = {"deployment": deployment.to_dict()}
    if args.key is not None:
        key = client.api_keys.create(deployment, name=args.key, rate=args.rate)
        result["api_key"] = key.to_dict()
    out.result(result, lambda: f"Deployment {deployment.id}: {deployment.status} "
               f"{client.url}{deployment.predict_url}"
               + (f"\nAPI key (shown once): {result['api_key']['key']}" if "api_key" in result else ""))
    return 0


def cmd_predict(args, out) -> int:
    client = _client(args, out)
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    palette = _palette(client, args.deployment) if args.format != "json" else None
    written: list[dict[str, Any]] = []
    for image in args.images:
        prediction = client.predict(args.deployment, image, api_key=args.api_key)
        stem = Path(image).stem
        files: list[str] = []
        if args.format == "json":
            path = out_dir / f"{stem}.json"
            path.write_text(json.dumps(prediction.to_dict()))
            files.append(str(path))
        elif args.format == "png":
            files.append(str(write_png(out_dir / f"{stem}.png", prediction.class_map(), palette)))
        else:  # one 0/255 PNG per class present
            for p in prediction.predictions:
                mask = p.array().astype("uint8") * 255
                files.append(str(write_png(out_dir / f"{stem}_{_safe(p.class_name)}.png", mask)))
        summary = {"image": image, "files": files, "classes": {p.class_name: p.area for p in prediction.predictions},
                   "timing_ms": prediction.timing_ms}
        written.append(summary)
        if not out.json:
            out.info(f"{image}: " + ", ".join(f"{k} {v} px" for k, v in summary["classes"].items())
                     + f" -> {', '.join(files) or 'nothing'}")
    out.result(written)
    return 0


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name) or "class"


def _palette(client: Client, deployment: int) -> list[tuple[int, int, int]]:
    """Index 0 black (background), label i = class index + 1 in the class's colour."""
    palette = [(0, 0, 0)] + [(0, 0, 0)] * 255
    try:
        project = client.deployments.get(deployment).project
        for c in client.classes.list(project):
            if 0 <= c.index < 255 and c.color:
                palette[c.index + 1] = hex_to_rgb(c.color)
    except errors.ApiError:
        pass  # an API key user may not read the project: keep a plain palette
    return palette


# --- parser --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help="server URL (else TESSERA_URL or the login config)")
    common.add_argument("--token", default=argparse.SUPPRESS, help="API token (else TESSERA_TOKEN or the login config)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="JSON output on stdout")
    common.add_argument("--retries", type=int, default=argparse.SUPPRESS, help="retries on 429/503 (default 5)")

    parser = argparse.ArgumentParser(prog="tessera", parents=[common], description=(
        "Tessera from the command line. Exit codes: " + ", ".join(f"{v} {k}" for k, v in EXIT_CODES.items())))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func, help: str, parent=sub):
        p = parent.add_parser(name, help=help, parents=[common])
        p.set_defaults(func=func)
        return p

    p = add("login", cmd_login, f"get a token and save it to {config_path()}")
    p.add_argument("--username")
    p.add_argument("--password", help="else TESSERA_PASSWORD, else asked")

    projects = sub.add_parser("projects", help="list or create projects").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    add("ls", cmd_projects_ls, "list projects", projects)
    p = add("create", cmd_projects_create, "create a project", projects)
    p.add_argument("name")
    p.add_argument("--description", default="")

    classes = sub.add_parser("classes", help="list or create label classes").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = add("ls", cmd_classes_ls, "list a project's classes", classes)
    p.add_argument("-p", "--project", type=int, required=True)
    p = add("create", cmd_classes_create, "create classes", classes)
    p.add_argument("-p", "--project", type=int, required=True)
    p.add_argument("names", nargs="+")
    p.add_argument("--color", help="#rrggbb (default: the server picks)")

    p = add("upload", cmd_upload, "upload a folder of images/videos (parallel, resumable)")
    p.add_argument("dir")
    p.add_argument("-p", "--project", type=int, required=True)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--no-skip", action="store_true", help="send files the project already has")
    p.add_argument("--no-recursive", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = add("import", cmd_import, "import labels from FILE or s3://bucket/key")
    p.add_argument("source")
    p.add_argument("-p", "--project", type=int, required=True)
    p.add_argument("--format", required=True, choices=["coco", "labelme", "png"])
    p.add_argument("--no-wait", action="store_true", help="return once the job is queued")
    p.add_argument("--timeout", type=float, default=1800)

    p = add("export", cmd_export, "download the dataset as a zip")
    p.add_argument("-p", "--project", type=int, required=True)
    p.add_argument("--format", default="coco", choices=["coco", "labelme", "png"])
    p.add_argument("-o", "--output", help="zip path (default project<ID>-<format>.zip)")
    p.add_argument("--include-unlabeled", action="store_true")
    p.add_argument("--no-images", action="store_true")
    p.add_argument("--background", action="store_true", help="build it in a server job first")
    p.add_argument("--timeout", type=float, default=1800)

    p = add("train", cmd_train, "start a training run of a workflow")
    p.add_argument("-p", "--project", type=int, required=True)
    p.add_argument("--workflow", required=True, help="workflow id or name (created when --config is given)")
    p.add_argument("--config", help="workflow config as JSON, or @file.json: create the workflow")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--watch", action="store_true", help="stream live loss/mIoU until the run ends")
    p.add_argument("--wait", action="store_true", help="wait for the end without streaming")
    p.add_argument("--timeout", type=float, default=None)

    runs = sub.add_parser("runs", help="training runs").add_subparsers(dest="action", required=True, metavar="ACTION")
    p = add("ls", cmd_runs_ls, "list training runs", runs)
    p.add_argument("-p", "--project", type=int)
    p.add_argument("--status")

    artifacts = sub.add_parser("artifacts", help="trained artifacts").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = add("ls", cmd_artifacts_ls, "list artifacts", artifacts)
    p.add_argument("-p", "--project", type=int)

    p = add("deploy", cmd_deploy, "deploy an artifact behind the prediction API")
    p.add_argument("artifact", type=int)
    p.add_argument("--name", default="")
    p.add_argument("--runtime", default="onnxruntime", choices=["onnxruntime", "onnxruntime-int8", "pytorch"])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--key", metavar="NAME", help="also create an API key with this name (printed once)")
    p.add_argument("--rate", default="", help="the key's rate, e.g. 120/min")
    p.add_argument("--no-wait", action="store_true")
    p.add_argument("--timeout", type=float, default=600)

    p = add("predict", cmd_predict, "segment images with a deployment")
    p.add_argument("images", nargs="+", metavar="IMG")
    p.add_argument("-d", "--deployment", type=int, required=True)
    p.add_argument("-o", "--output", default=".", help="folder for the results (default .)")
    p.add_argument("--format", default="png", choices=["png", "masks", "json"], help=(
        "png: one palette PNG per image whose pixel values are class labels (index + 1, 0 "
        "background); masks: one 0/255 PNG per class; json: the API's answer"))
    p.add_argument("--api-key", help="the deployment's API key (else your token)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, default in (("url", None), ("token", None), ("json", False), ("retries", 5)):
        if not hasattr(args, name):
            setattr(args, name, default)
    out = Output(args.json)
    try:
        return args.func(args, out)
    except errors.TesseraError as exc:
        if out.json:
            print(json.dumps({"error": {"code": exc.code, "message": exc.message, "status": exc.status,
                                        "details": exc.details}}, default=str), flush=True)
        print(f"error: {exc}", file=sys.stderr)
        if exc.details and not out.json:
            print(f"details: {json.dumps(exc.details, default=str)[:2000]}", file=sys.stderr)
        return _exit_code(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
