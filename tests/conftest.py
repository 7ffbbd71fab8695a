import os
from pathlib import Path

os.environ.setdefault("REPRO_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
os.environ.setdefault("REPRO_QUIET", "1")
