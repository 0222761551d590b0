"""The frontend's own unit tests (Vitest: RLE codec against pycocotools fixtures, mask
document undo/redo, viewport transforms, the run websocket client, the SAM decoder
inputs...) and its type check run as part of the suite."""
import shutil
import subprocess
from pathlib import Path

import pytest

FRONTEND = Path(__file__).resolve().parent.parent / "frontend"


@pytest.fixture(scope="module")
def npm() -> str:
    npm = shutil.which("npm")
    if npm is None or not (FRONTEND / "node_modules").is_dir():
        pytest.skip("npm or frontend/node_modules missing (make install sets them up)")
    return npm


def test_vitest_suite_passes(npm):
    result = subprocess.run([npm, "test", "--silent"], cwd=FRONTEND, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "passed" in result.stdout


def test_typescript_compiles(npm):
    result = subprocess.run([npm, "run", "--silent", "typecheck"], cwd=FRONTEND,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
