"""Names in a training output folder (no torch: the web process reads them too)."""

CHECKPOINTS_DIR = "checkpoints"
MODEL_WEIGHTS = "model.safetensors"
STATE_FILE = "trainer_state.json"  # written last: a checkpoint folder with it is complete


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def checkpoint_step(name: str) -> int:
    """The step of a checkpoint folder name (``step-000200`` -> 200)."""
    return int(name.split("-")[1])
