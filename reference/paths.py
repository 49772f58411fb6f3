"""Where the project's own model and data live (no imports beyond the standard library, so the
command line can find them before it loads torch)."""
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
DEFAULT_WEIGHTS = ASSETS / "brackets_model.safetensors"
DEFAULT_DATA = ASSETS / "brackets_data.json"
