"""Results store, profiles and data layer (the claims ledger: test_claims.py)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from reprobook import data, evidence, profiles, provenance, results

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------- results store
def test_store_reuses_and_forces(tmp_path):
    store = results.Store(tmp_path)
    calls = []
    fn = lambda: calls.append(1) or {"x": len(calls)}
    a = store.run("exp", {"k": 1}, "small", 0, fn)
    b = store.run("exp", {"k": 1}, "small", 0, fn)
    c = store.run("exp", {"k": 1}, "small", 0, fn, force=True)
    assert (a["reused"], b["reused"], c["reused"]) == (False, True, False)
    assert len(calls) == 2 and c["values"] == {"x": 2}
    prov = c["provenance"]
    assert {"commit", "hardware", "packages", "runtime_s", "finished"} <= set(prov)


def test_interrupted_grid_resumes(tmp_path):
    store = results.Store(tmp_path)
    done = []

    def cell(i):
        if i == 2 and not done:
            done.append("boom")
            raise KeyboardInterrupt
        return {"i": i}
    with pytest.raises(KeyboardInterrupt):
        for i in range(4):
            store.run("grid", {"i": i}, "small", 0, lambda i=i: cell(i))
    ran = []
    for i in range(4):
        rec = store.run("grid", {"i": i}, "small", 0, lambda i=i: ran.append(i) or cell(i))
        assert rec["values"] == {"i": i}
    assert ran == [2, 3]


def test_corrupt_record_is_a_clear_error(tmp_path):
    store = results.Store(tmp_path)
    path = store.path("exp", {"k": 1}, "small")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(results.CorruptRecord, match="delete it and rerun"):
        store.load("exp", {"k": 1}, "small")


def test_atomic_write_leaves_no_partial_file(tmp_path):
    path = tmp_path / "a.json"
    with pytest.raises(TypeError):
        results.atomic_write_json(path, {"bad": object()})
    assert not path.exists() and not list(tmp_path.glob("*.tmp"))


# ----------------------------------------------------------------- profiles
def test_unknown_profile_lists_valid_ones():
    with pytest.raises(profiles.ParameterError, match="valid profiles: full, small"):
        profiles.resolve_profile({"small": {}, "full": {}}, "huge")


def test_unknown_parameter_lists_valid_ones():
    with pytest.raises(profiles.ParameterError, match="valid parameters: profile, seed, device"):
        profiles.check_parameters({"profile", "epochs"})


def test_device_auto_is_cpu_without_cuda():
    if not torch.cuda.is_available():
        assert profiles.resolve_device("auto").type == "cpu"
        with pytest.raises(profiles.ParameterError):
            profiles.resolve_device("cuda")


def test_cli_rejects_unknown_profile():
    out = subprocess.run([sys.executable, "-m", "reprobook.cli", "run", "gsc", "--profile", "huge"],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "invalid choice" in out.stderr and "small" in out.stderr


# ----------------------------------------------------------------- data
def test_mnist_loads_with_checksums():
    d = data.load_mnist(download=False)
    assert d["x_train"].shape == (60000, 1, 28, 28) and d["y_test"].shape == (10000,)
    assert 0.0 <= float(d["x_train"].min()) and float(d["x_train"].max()) <= 1.0
    assert torch.bincount(d["y_train"]).tolist()[:2] == [5923, 6742]


def test_missing_file_names_file_and_fix(tmp_path):
    with pytest.raises(data.DataError, match="missing data file .*REPRO_DATA"):
        data.load_mnist(root=tmp_path, download=False)


def test_corrupt_file_is_detected(tmp_path):
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    src = data.data_root() / "MNIST" / "raw"
    for f in src.iterdir():
        (tmp_path / "MNIST" / "raw" / f.name).write_bytes(f.read_bytes())
    (tmp_path / "MD5SUMS").write_text((data.data_root() / "MD5SUMS").read_text())
    target = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    raw = bytearray(target.read_bytes())
    raw[100] ^= 1
    target.write_bytes(bytes(raw))
    with pytest.raises(data.DataError, match="corrupt data file .*t10k-labels"):
        data.load_mnist(root=tmp_path, download=False)


def test_uci_split_and_sst():
    d = data.load_uci("bostonHousing", split=0)
    assert d["x_train"].shape[1] == 13 and len(d["x_train"]) + len(d["x_test"]) == 506
    sst = data.load_sst()
    assert len(sst["train"][0]) == 6920 and len(sst["test"][0]) == 1821


def test_cifar_source_is_recorded():
    d = data.load_cifar10(download=False)
    assert d["x_train"].shape == (50000, 3, 32, 32) and d["x_test"].shape == (10000, 3, 32, 32)
    assert "JPEG" in d["source"] or "original" in d["source"]
    assert torch.bincount(d["y_test"]).tolist() == [1000] * 10


# ----------------------------------------------------------------- repository hygiene
def test_environment_yml_mirrors_requirements():
    reqs = {l.strip() for l in (ROOT / "requirements.txt").read_text().splitlines()
            if l.strip() and not l.startswith("#")}
    env = {l.strip()[2:] for l in (ROOT / "environment.yml").read_text().splitlines()
           if l.strip().startswith("- ") and "==" in l}
    assert reqs == env


def test_paired_notebooks_are_in_sync():
    import jupytext
    for py in list((ROOT / "notebooks").glob("*.py")) + [ROOT / f"book/{p}.py" for p in ("intro", "summary", "status")]:
        ipynb = py.with_suffix(".ipynb")
        assert ipynb.exists(), f"{ipynb} missing: run jupytext --to ipynb {py}"
        a, b = jupytext.read(py), jupytext.read(ipynb)
        assert [c.source for c in a.cells] == [c.source for c in b.cells], py.name
        params = [c for c in a.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1 and 'profile = "small"' in params[0].source


# ----------------------------------------------------------------- staleness
def test_records_carry_a_code_hash_and_go_stale_when_the_code_changes(tmp_path, monkeypatch):
    store = results.Store(tmp_path)
    rec = store.save("cd_uci", {"a": 1}, "small", 0, {"x": 1.0}, 0.1)
    assert rec["provenance"]["code_hash"] == provenance.experiment_code_hash("cd_uci")
    assert not provenance.is_stale(rec)
    assert provenance.chapter_of("cd_uci") == "concrete_dropout"
    assert provenance.code_hash("gsc") != provenance.code_hash("htsr")
    monkeypatch.setattr(provenance, "experiment_code_hash", lambda experiment: "changed")
    assert provenance.is_stale(rec)


def test_committed_evidence_is_read_first_and_stale_work_records_are_recomputed(tmp_path, monkeypatch):
    committed, work = tmp_path / "results", tmp_path / "work"
    monkeypatch.setattr(evidence, "committed_root", lambda: committed)
    assert evidence.evidence_profile("gsc", "small") == "small"
    results.Store(committed).save("gsc_noise", {"a": 1}, "medium", 0, {"x": "committed"}, 1.0)
    assert evidence.evidence_profile("gsc", "small") == "small"  # records, but no complete run
    results.atomic_write_json(evidence.manifest_path("gsc", "medium", committed), {})
    assert evidence.evidence_profile("gsc", "small") == "medium"
    assert evidence.evidence_profile("htsr", "small") == "small"
    assert evidence.evidence_profile("gsc", "full") == "full"
    store = results.Store(work, read_roots=[committed])
    calls = []
    rec = store.run("gsc_noise", {"a": 1}, "medium", 0, lambda: calls.append(1) or {"x": "new"})
    assert rec["values"]["x"] == "committed" and rec["reused"] and not calls
    results.Store(work).save("gsc_noise", {"a": 2}, "small", 0, {"x": "old"}, 1.0)
    monkeypatch.setattr(provenance, "experiment_code_hash", lambda experiment: "changed")
    rec = store.run("gsc_noise", {"a": 2}, "small", 0, lambda: {"x": "new"})
    assert rec["values"]["x"] == "new" and not rec["reused"]  # stale work record recomputed
    rec = store.run("gsc_noise", {"a": 1}, "medium", 0, lambda: {"x": "new"})
    assert rec["values"]["x"] == "committed" and rec["stale"]  # evidence kept, labelled stale
    assert [r["stale"] for r in evidence.committed_status()] == [True]


def test_rerun_stale_recomputes_committed_records_and_summaries_of_stale_parts_are_stale(
        tmp_path, monkeypatch):
    """A stale committed record is recomputed when reuse_stale is off ($REPRO_RERUN_STALE=1);
    a record computed after a stale part was reused (a summary of it) is itself stale and is
    refused by commit-results, while another chapter's records are not affected."""
    committed, work = tmp_path / "results", tmp_path / "work"
    results.Store(committed).save("cd_uci_set", {"set": "wine"}, "medium", 0, {"x": "old"}, 1.0)
    monkeypatch.setattr(provenance, "experiment_code_hash", lambda experiment: "changed")
    monkeypatch.setenv("REPRO_RERUN_STALE", "1")
    store = results.Store(work, read_roots=[committed])
    rec = store.run("cd_uci_set", {"set": "wine"}, "medium", 0, lambda: {"x": "new"})
    assert rec["values"]["x"] == "new" and not rec["reused"] and not provenance.is_stale(rec)
    rec = store.run("cd_uci", {"all": 1}, "medium", 0, lambda: {"mean": 1})
    assert not provenance.is_stale(rec)
    monkeypatch.delenv("REPRO_RERUN_STALE")
    store = results.Store(tmp_path / "work2", read_roots=[committed])
    rec = store.run("cd_uci_set", {"set": "wine"}, "medium", 0, lambda: {"x": "new"})
    assert rec["values"]["x"] == "old" and rec["stale"]
    summary = store.run("cd_uci", {"all": 1}, "medium", 0, lambda: {"mean": 1})
    assert summary["provenance"]["stale_inputs"] == ["cd_uci_set/" + rec["config_hash"] + ".json"]
    assert provenance.is_stale(summary)
    other = store.run("gsc_noise", {"a": 1}, "medium", 0, lambda: {"x": 1})
    assert not provenance.is_stale(other)
    copied, stale = evidence.copy_records(["concrete_dropout"], "medium", tmp_path / "work2",
                                         tmp_path / "out")
    assert not copied and stale == ["cd_uci/" + summary["config_hash"] + ".json"]


def test_corrupt_mnist_is_reported_as_corrupt_not_as_a_failed_download(tmp_path):
    shared = data.data_root()
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte"]
    for n in names:
        (raw / n).symlink_to(shared / "MNIST" / "raw" / n)
    sums = [l for l in (shared / "MD5SUMS").read_text().splitlines() if "MNIST/raw/" in l]
    (tmp_path / "MD5SUMS").write_text("\n".join(sums) + "\n")
    bad = raw / "t10k-images-idx3-ubyte"
    blob = bytearray(bad.read_bytes())
    bad.unlink()
    blob[1000] ^= 0xFF  # one byte changed, as a new user tried it
    bad.write_bytes(bytes(blob))
    with pytest.raises(data.DataError, match="corrupt data file .*t10k-images-idx3-ubyte"):
        data.load_mnist(tmp_path, download=True)
    bad.unlink()  # missing: the download fallback is tried (and fails offline with its own message)
    with pytest.raises(data.MissingData):
        data.load_mnist(tmp_path, download=False)


def test_mnist_source_names_no_machine_path():
    """Configs that include the data source must hash alike on every machine (committed
    records are found by that hash): the source says which copy, not where it lies."""
    d = data.load_mnist()
    assert str(data.data_root()) not in d["source"] and "/" not in d["source"].split("(")[0]


def test_profiles_table_lists_every_profile_and_nested_setting():
    from reprobook import book

    t = book.profiles_table("dropmax")
    assert list(t.columns) == ["small", "medium", "full"]
    assert t.loc["dropmax_mnist.sizes.1k.epochs", "medium"] == "200"  # nested by experiment
    assert t.loc["dropmax_mnist.sizes.55k.epochs", "small"] == "–"  # a setting a profile lacks
    for ch in book.CHAPTERS:
        assert set(book.profiles_table(ch).columns) == {"small", "medium", "full"}, ch


def test_commit_results_copies_current_records_of_the_chapter_only(tmp_path, monkeypatch):
    work, committed = tmp_path / "work", tmp_path / "results"
    store = results.Store(work)
    store.save("gsc_noise", {"a": 1}, "medium", 0, {"x": 1.0}, 1.0)
    store.save("htsr_lenet5", {"a": 1}, "medium", 0, {"x": 2.0}, 1.0)
    store.save("gsc_noise", {"a": 1}, "small", 0, {"x": 3.0}, 1.0)
    store.checkpoint_path("gsc_noise", {"a": 2}, "medium").write_bytes(b"ckpt")
    copied, stale = evidence.copy_records(["gsc"], "medium", work, committed)
    assert [p.parent.name for p in copied] == ["gsc_noise"] and not stale
    assert not list(committed.rglob("*.pt")) and not (committed / "small").exists()
    assert results.read_record(copied[0])["values"] == {"x": 1.0}
    assert not evidence.manifest_path("gsc", "medium", committed).exists()  # no finished run
    copied, _ = evidence.copy_records(["gsc"], "medium", work, committed, runs={"gsc": {"d": 1}})
    manifest = json.loads(evidence.manifest_path("gsc", "medium", committed).read_text())
    assert manifest["records"] == [f"gsc_noise/{copied[0].name}"] and manifest["run"] == {"d": 1}
    evidence.manifest_path("gsc", "medium", committed).unlink()
    store.save("gsc_cifar", {"a": 1}, "medium", 0, {"x": 4.0}, 1.0, code="old code")
    copied, stale = evidence.copy_records(["gsc"], "medium", work, committed, runs={"gsc": {}})
    assert len(copied) == 1 and stale and stale[0].startswith("gsc_cifar/")
    assert not evidence.manifest_path("gsc", "medium", committed).exists()  # stale: no manifest


def test_commit_results_needs_a_notebook_that_ran_to_its_end(tmp_path):
    import nbformat

    with pytest.raises(RuntimeError, match="not found"):
        evidence.executed_run("gsc", "medium", tmp_path)
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"parameters": {"profile": "small"}, "end_time": "t",
                                "exception": None, "duration": 3.0}
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, str(tmp_path / "notebooks" / "gsc.ipynb"))
    with pytest.raises(RuntimeError, match="executed at profile 'small'"):
        evidence.executed_run("gsc", "medium", tmp_path)
    nb.metadata["papermill"]["parameters"]["profile"] = "medium"
    nbformat.write(nb, str(tmp_path / "notebooks" / "gsc.ipynb"))
    assert evidence.executed_run("gsc", "medium", tmp_path)["duration_s"] == 3.0
    nb.metadata["papermill"]["exception"] = True
    nbformat.write(nb, str(tmp_path / "notebooks" / "gsc.ipynb"))
    with pytest.raises(RuntimeError, match="with an error"):
        evidence.executed_run("gsc", "medium", tmp_path)


def test_paired_bootstrap_interval_matches_the_normal_approximation():
    """stats.paired_bootstrap: a constant difference has a zero-width interval at it; for
    400 N(0, 1) differences the half-width is about 1.96 sd / sqrt(400); runs x units input
    averages over runs with the units kept paired."""
    from reprobook import stats
    a = np.arange(50, dtype=float)
    assert stats.paired_bootstrap(a + 0.5, a, n_boot=200) == pytest.approx((0.5, 0.5, 0.5))
    d = np.random.default_rng(0).standard_normal(400)
    mean, lo, hi = stats.paired_bootstrap(d, np.zeros(400), n_boot=4000)
    half = 1.96 * d.std(ddof=1) / np.sqrt(400)
    assert lo < mean < hi and (hi - lo) / 2 == pytest.approx(half, rel=0.15)
    two = np.stack([d, d + 1.0])
    assert stats.paired_bootstrap(two, np.zeros((2, 400)))[0] == pytest.approx(d.mean() + 0.5)
