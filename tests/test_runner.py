"""The experiment registry and runner: one protocol, local and on a Ray cluster."""
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from reprobook import claims, registry, runner
from reprobook.profiles import ParameterError
from reprobook.results import Store, read_record

TIMINGS = {"train_s", "ms_per_step", "us_per_image"}
# a pathology grid small enough for a test: 10 cells of one epoch on 200 test images
TINY = {"epochs": 1, "test_n": 200}


def _runner(root, executor="local", **kw):
    return runner.Runner("dropmax", "small", store=Store(root), executor_name=executor, **kw)


def _records(root: Path) -> dict:
    """config hash -> values without timings, for every record under ``root``."""
    out = {}
    for p in sorted(root.glob("small/*/*.json")):
        rec = read_record(p)
        values = {k: v for k, v in rec["values"].items() if k not in TIMINGS}
        if "hist" in values:
            values["hist"] = {k: v for k, v in values["hist"].items() if k != "epoch_s"}
        out[(rec["experiment"], rec["config_hash"])] = values
    return out


def test_seed_for_is_a_hash_of_the_run_seed_and_the_keys():
    a, b = registry.Context(seed=0), registry.Context(seed=1)
    assert a.seed_for("cell", 3) == registry.Context(seed=0).seed_for("cell", 3)
    assert len({a.seed_for("cell", 3), a.seed_for("cell", 4), b.seed_for("cell", 3)}) == 3
    assert 0 <= a.seed_for("x") < 2**31


def test_unknown_experiment_and_override_are_one_clear_error(tmp_path):
    with pytest.raises(KeyError, match="registered in dropmax: .*dropmax_mnist"):
        registry.get("dropmax_nonsense")
    with pytest.raises(ParameterError, match="unknown parameter.*epochz"):
        _runner(tmp_path).config("dropmax_pathology", epochz=3)


def test_a_ledger_key_outside_the_declared_outputs_is_rejected():
    text = """
claims:
- id: x
  statement: s
  report: 1.0
  report_source: report §1
  ours: {experiment: dropmax_pathology, key: no_such_output.a}
  check: {kind: info}
"""
    with pytest.raises(claims.LedgerError, match="not among the outputs"):
        claims.parse_ledger(text, "dropmax")


def test_cells_are_reused_and_the_summary_is_what_lookup_finds(tmp_path):
    r = _runner(tmp_path)
    first = r.run("dropmax_pathology", **TINY)
    assert not any(c["reused"] for c in first["cells"])
    again = _runner(tmp_path).run("dropmax_pathology", **TINY)
    assert all(c["reused"] for c in again["cells"]) and again["reused"]
    found = _runner(tmp_path).lookup("dropmax_pathology", **TINY)
    assert found["config_hash"] == first["config_hash"]
    assert found["values"] == first["values"]
    # an interrupted grid resumes: remove two cells, only those are computed again
    for c in first["cells"][:2]:
        (tmp_path / "small" / "dropmax_zrun" / f"{c['config_hash']}.json").unlink()
    resumed = _runner(tmp_path).run("dropmax_pathology", **TINY)
    assert sum(not c["reused"] for c in resumed["cells"]) == 2


ray = pytest.importorskip("ray") if os.environ.get("REPRO_SKIP_RAY") != "1" else None


@pytest.fixture(scope="module")
def cluster():
    if ray is None:
        pytest.skip("REPRO_SKIP_RAY=1")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.mark.ray
def test_ray_executor_writes_the_records_of_the_local_executor(tmp_path, cluster):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a one-CPU Ray task runs
    try:
        _runner(tmp_path / "local").run("dropmax_pathology", **TINY)
    finally:
        torch.set_num_threads(threads)
    _runner(tmp_path / "ray", "ray").run("dropmax_pathology", **TINY)
    local, remote = _records(tmp_path / "local"), _records(tmp_path / "ray")
    cells = {k for k in local if k[0] == "dropmax_zrun"}
    assert len(cells) == 10 and cells == {k for k in remote if k[0] == "dropmax_zrun"}
    for key in cells:
        assert local[key] == remote[key], key
    # the summary's config names its cells' finish times; its values are the same
    (summary_local,) = [v for k, v in local.items() if k[0] == "dropmax_pathology"]
    (summary_ray,) = [v for k, v in remote.items() if k[0] == "dropmax_pathology"]
    assert summary_local == summary_ray


def _kill_first_cell_worker(stop: threading.Event, killed: list):
    """SIGKILL the first process running a runner cell (a Ray worker), once."""
    while not stop.is_set() and not killed:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="ignore")
            except OSError:
                continue
            if "ray::_ray_cell" in cmd:
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                return
        time.sleep(0.05)


@pytest.mark.ray
def test_a_killed_worker_is_retried_and_every_record_is_written_once(tmp_path, cluster):
    stop, killed = threading.Event(), []
    t = threading.Thread(target=_kill_first_cell_worker, args=(stop, killed), daemon=True)
    t.start()
    try:
        rec = _runner(tmp_path, "ray").run("dropmax_pathology", epochs=3, test_n=200)
    finally:
        stop.set()
        t.join()
    assert killed, "no worker was running a cell"
    files = sorted((tmp_path / "small" / "dropmax_zrun").glob("*.json"))
    assert len(files) == len(rec["cells"]) == 10
    assert len({read_record(f)["config_hash"] for f in files}) == 10
    assert not list((tmp_path / "small").rglob("*.tmp"))


def test_code_hash_ignores_docstrings_and_comments_but_not_code(tmp_path):
    a, b, c = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    a.write_text('"""Module."""\ndef f(x):\n    """Doc."""\n    return x + 1  # one\n')
    b.write_text('"""Another text."""\ndef f(x):\n    # a comment\n    """Other doc."""\n'
                 '    return x + 1\n')
    c.write_text('"""Module."""\ndef f(x):\n    """Doc."""\n    return x + 2\n')
    assert registry.code_text(a) == registry.code_text(b) != registry.code_text(c)
