"""The Python SDK (sdk/) in a virtualenv of its own: installed from its directory with
nothing but its dependencies (and pytest + pillow for its tests), it runs its whole test
suite (sdk/tests/) against a real node that `tests.sdk.serve` starts with this
interpreter. Proves the client needs nothing of Django or torch."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk"
pytestmark = pytest.mark.worker


@pytest.fixture(scope="module")
def sdk_python() -> Path:
    """A venv keyed by the SDK's pyproject.toml (dependencies are installed once); the SDK
    itself is reinstalled each time, as a regular (non-editable) install."""
    var = Path(os.environ.get("TESSERA_VAR_DIR") or ROOT / "var")
    key = hashlib.sha256((SDK / "pyproject.toml").read_bytes()).hexdigest()[:12]
    path = var / f"sdk-venv-{key}"
    python = path / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if not (path / ".complete").exists():
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([*pip, f"{SDK}[test]"], check=True, timeout=600)
        (path / ".complete").touch()
    subprocess.run([*pip, "--no-deps", "--force-reinstall", str(SDK)], check=True, timeout=300)
    return python


def _clean_env() -> dict[str, str]:
    """No repository on the path, no settings of this test run for the node to pick up."""
    drop = ("PYTHONPATH", "DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("TESSERA_")}


def test_the_client_installs_without_django_or_torch(sdk_python: Path, tmp_path: Path):
    check = ("import importlib.util as u, tessera, tessera.cli; "
             "print(tessera.__file__); "
             "print([m for m in ('django', 'torch', 'rest_framework', 'PIL') if u.find_spec(m)])")
    out = subprocess.run([str(sdk_python), "-c", check], cwd=tmp_path, env=_clean_env(),
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert "site-packages" in out[0], out  # the installed copy, not the source folder
    assert out[1] == "['PIL']", out  # pillow comes with the [test] extra only
    script = sdk_python.with_name("tessera")
    help_text = subprocess.run([str(script), "--help"], env=_clean_env(), capture_output=True,
                               text=True, check=True).stdout
    assert "upload" in help_text and "predict" in help_text


def test_sdk_suite_passes_against_a_running_node(sdk_python: Path, tmp_path: Path):
    env = {**_clean_env(), "TESSERA_SERVER_PYTHON": sys.executable}
    result = subprocess.run(
        [str(sdk_python), "-m", "pytest", str(SDK / "tests"), "-q", "-p", "no:cacheprovider",
         "--basetemp", str(tmp_path / "sdk-tests")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout.splitlines()[-1]
