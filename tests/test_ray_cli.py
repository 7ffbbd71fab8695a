"""The command a cluster user types: a chapter's experiment sent to a Ray head through the CLI
writes the records of the local executor (its own module: `ray stop` ends every local cluster)."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray
if os.environ.get("REPRO_SKIP_RAY") == "1":
    pytest.skip("REPRO_SKIP_RAY=1", allow_module_level=True)
pytest.importorskip("ray")

RAY = Path(sys.executable).with_name("ray")
TIMINGS = {"seconds"}  # a cell's own wall time


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cells(root: Path) -> dict:
    out = {}
    for p in (root / "small" / "gsc_noise_replicate").glob("*.json"):
        rec = json.loads(p.read_text())
        out[rec["config_hash"]] = {k: v for k, v in rec["values"].items() if k not in TIMINGS}
    return out


def test_cli_sends_gsc_noise_to_a_ray_head_and_writes_the_local_records(tmp_path):
    port = _free_port()
    env = dict(os.environ, REPRO_EVIDENCE="none", REPRO_QUIET="1", OMP_NUM_THREADS="1",
               RAY_USAGE_STATS_ENABLED="0")
    subprocess.run([str(RAY), "start", "--head", f"--port={port}", "--num-cpus=2",
                    "--include-dashboard=false"], check=True, env=env, capture_output=True,
                   timeout=120)
    try:
        for name, extra in (("local", []),
                            ("ray", ["--executor", "ray", "--address", f"127.0.0.1:{port}"])):
            out = subprocess.run(
                [sys.executable, "-m", "reprobook.cli", "run", "gsc", "--profile", "small",
                 "--only", "gsc_noise", *extra], env=dict(env, REPRO_RESULTS=str(tmp_path / name)),
                capture_output=True, text=True, timeout=900)
            assert out.returncode == 0, out.stderr[-2000:]
    finally:
        subprocess.run([str(RAY), "stop", "--force"], env=env, capture_output=True, timeout=120)
    local, remote = _cells(tmp_path / "local"), _cells(tmp_path / "ray")
    assert len(local) == 70 and set(local) == set(remote)  # 7 architectures x 10 data sets
    for key, values in local.items():
        assert remote[key] == values, key
    assert list((tmp_path / "ray" / "small" / "gsc_noise").glob("*.json"))
