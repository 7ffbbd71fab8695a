"""Notebook parameters through papermill: each bad value is refused in one readable line, and
a seed other than the committed evidence's runs the profile asked for with that seed.

Each case executes a chapter's own start-up cells (its notebook up to ``book.start``, taken
from ``notebooks/<chapter>.py``) and one cell that prints what the run resolved to, so the
chapters' real parameter handling is tested without training anything.
"""
import json

import jupytext
import nbformat
import papermill as pm
import pytest
import torch

from reprobook.paths import REPO_ROOT
from reprobook.evidence import committed_run

REPORT = ("import json\nprint('RUN=' + json.dumps({'profile': run.profile, 'seed': run.seed, "
          "'requested': run.requested, "
          "'seeds': run.settings.get('seeds') or run.settings.get('dropmax_mnist', {}).get('seeds'), "
          "'header': book.evidence_header(run.chapter, run)}))")


def startup_notebook(chapter: str, path) -> None:
    nb = jupytext.read(REPO_ROOT / "notebooks" / f"{chapter}.py")
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        if cell.cell_type == "code" and "book.start(" in cell.source:
            break
    nb.cells = cells + [nbformat.v4.new_code_cell(REPORT)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, str(path))


def execute(tmp_path, chapter: str, **parameters):
    src, out = tmp_path / f"{chapter}.ipynb", tmp_path / f"{chapter}.out.ipynb"
    startup_notebook(chapter, src)
    try:
        pm.execute_notebook(str(src), str(out), parameters=parameters, kernel_name="python3",
                            progress_bar=False, cwd=str(tmp_path))
    except pm.PapermillExecutionError as err:
        return None, err
    text = "".join(o.get("text", "") for c in nbformat.read(str(out), 4).cells
                   if c.cell_type == "code" for o in c.get("outputs", []))
    return json.loads(text.split("RUN=")[1].splitlines()[0]), None


def one_line_error(err) -> str:
    assert err is not None, "the notebook should have refused the parameter"
    assert err.ename == "ParameterError"
    assert len(err.traceback) == 1, err.traceback  # one line, no traceback
    return err.traceback[0]


@pytest.fixture(autouse=True)
def _isolated_results(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_RESULTS", str(tmp_path / "results"))


@pytest.mark.parametrize("params, words", [
    ({"profile": "smal"}, ["'smal'", "small", "medium", "full"]),
    ({"seed": "abc"}, ["'abc'", "whole number"]),
    ({"seed": -1}, ["-1", "whole number"]),
    ({"epochs": 3}, ["epochs", "profile, seed, device"]),
    ({"executor": "slurm"}, ["'slurm'", "local, ray"]),
])
def test_bad_parameter_is_one_line(tmp_path, params, words):
    _, err = execute(tmp_path, "dropmax", **params)
    line = one_line_error(err)
    assert all(w in line for w in words), line


def test_unknown_executor_is_one_line(tmp_path):
    line = one_line_error(execute(tmp_path, "gsc", executor="slurm")[1])
    assert "'slurm'" in line and "local, ray" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_line(tmp_path):
    line = one_line_error(execute(tmp_path, "gsc", device="cuda")[1])
    assert "'cuda'" in line and "auto, cpu" in line


def test_another_seed_runs_the_asked_profile_with_that_seed(tmp_path):
    if committed_run("gsc", "medium") is None or committed_run("dropmax", "medium") is None:
        pytest.skip("needs the committed medium evidence of gsc and dropmax")
    got, err = execute(tmp_path, "gsc", seed=3)
    assert err is None and got["profile"] == "small" and got["seed"] == 3
    assert "seed 0" in got["header"] and "seed 3" in got["header"]
    got, err = execute(tmp_path, "dropmax", seed=1)
    assert err is None and got["profile"] == "small" and got["seeds"] == [1]
    got, err = execute(tmp_path, "dropmax")  # the default seed shows the committed evidence
    assert err is None and got["profile"] == "medium" and got["seeds"] == [0, 1, 2]
    assert "committed records" in got["header"]


def test_evidence_switched_off(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_EVIDENCE", "none")
    got, err = execute(tmp_path, "dropmax")
    assert err is None and got["profile"] == "small" and got["seeds"] == [0]
    assert "REPRO_EVIDENCE=none" in got["header"]
