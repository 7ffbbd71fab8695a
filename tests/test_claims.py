"""The verdict rules of reprobook.claims, on hand-made claims and records, and every ledger."""
import math

import pytest
from scipy import stats

from reprobook import claims, registry


def _claim(**kw):
    kw.setdefault("id", "c")
    return claims.Claim(chapter="t", statement="s", **kw)


def _rec(values, config=None, profile="small"):
    return {"values": values, "config": config or {}, "profile": profile,
            "provenance": {"commit": "abcdef123"}}


@pytest.mark.parametrize("check,ours,expected", [
    ({"kind": "greater", "value": 1.02}, 1.09, "reproduced"),
    ({"kind": "greater", "value": 1.02}, 1.0, "not reproduced"),
    ({"kind": "less", "value": 0.1, "partly": 0.2}, 0.15, "partly"),
    ({"kind": "between", "lo": 0.97, "hi": 1.03}, 1.1, "not reproduced"),
    ({"kind": "between", "lo": 0.97, "hi": 1.03, "partly_lo": 0.9, "partly_hi": 1.2}, 1.1, "partly"),
    ({"kind": "close", "rtol": 0.1, "partly_rtol": 0.3}, 2.4, "partly"),
    ({"kind": "close", "rtol": 0.1}, 2.05, "reproduced"),
    ({"kind": "close", "target": 5.0, "atol": 0.5}, 2.05, "not reproduced"),
    ({"kind": "fraction", "min": 1.0, "partly": 0.5}, 2 / 3, "partly"),
    ({"kind": "true", "criterion": "x"}, False, "not reproduced"),
    ({"kind": "true", "criterion": "x", "expect": False}, False, "reproduced"),
    ({"kind": "greater", "value": 0}, float("nan"), "inconclusive"),
    ({"kind": "info"}, 3.0, "info"),
])
def test_judge(check, ours, expected):
    assert claims.judge(check, ours, _claim(paper=2.0)) == expected


def test_close_judges_each_column_against_its_own_number():
    c = _claim(paper=7.17, report=4.0, ours={"experiment": "e", "key": "err"},
               check={"kind": "close", "rtol": 0.15})
    row = claims.evaluate_claim(c, {"e": _rec({"err": 4.2})})
    assert row["verdict vs paper"] == "not reproduced" and row["verdict vs report"] == "reproduced"
    assert row["verdict"] == "not reproduced"  # the primary verdict is the paper's


def test_opposite_statements_get_opposite_checks():
    c = _claim(paper="explodes", report="does not explode", ours={"experiment": "e", "key": "r"},
               check={"kind": "greater", "value": 1.02},
               check_report={"kind": "less", "value": 1.02})
    row = claims.evaluate_claim(c, {"e": _rec({"r": 1.09})})
    assert (row["verdict vs paper"], row["verdict vs report"]) == ("reproduced", "not reproduced")
    with pytest.raises(claims.LedgerError, match="differ"):
        claims.validate(_claim(paper="explodes", report="does not explode",
                               ours={"experiment": "e", "key": "r"}, check={"kind": "greater", "value": 1}))


def test_true_check_needs_a_real_boolean_and_a_criterion():
    c = _claim(paper="yes")
    for bad in (float("nan"), "no", 1, None):
        with pytest.raises(TypeError):
            claims.judge({"kind": "true", "criterion": "x"}, bad, c)
    with pytest.raises(claims.LedgerError, match="criterion"):
        claims.validate(_claim(paper="yes", ours={"experiment": "e", "key": "k"}, check={"kind": "true"}))


def test_needs_and_sanity_make_a_claim_inconclusive_and_say_why():
    c = _claim(paper=1.0, ours={"experiment": "e", "key": "acc"}, check={"kind": "greater", "value": 0.5},
               needs=["config.epochs >= 80"],
               sanity=[{"any": ["values.soft_rank < 0.95", "values.spikes > 0"]}])
    rec = _rec({"acc": 0.1, "soft_rank": 1.0, "spikes": 0}, config={"epochs": 15})
    row = claims.evaluate_claim(c, {"e": rec})
    assert row["verdict"] == "inconclusive" and row["verdict vs paper"] == "inconclusive"
    assert "epochs >= 80" in row["why"] and "got 15" in row["why"]
    assert row["ours"] == "0.1"  # our value is still shown
    rec["config"]["epochs"] = 100
    row = claims.evaluate_claim(c, {"e": rec})
    assert row["verdict"] == "inconclusive" and "soft_rank < 0.95" in row["why"] and "spikes > 0" in row["why"]
    rec["values"]["spikes"] = 3
    assert claims.evaluate_claim(c, {"e": rec})["verdict"] == "not reproduced"
    rec["values"]["acc"] = 0.9
    assert claims.evaluate_claim(c, {"e": rec})["verdict"] == "reproduced"


def test_condition_on_missing_key_is_reported_as_missing():
    assert "key missing" in claims.check_conditions(["values.runs >= 10"], _rec({}))
    assert claims.check_conditions(["values.steps_equal == true", "config.name == lenet"],
                                   _rec({"steps_equal": True}, {"name": "lenet"})) is None
    with pytest.raises(claims.LedgerError):
        claims.check_conditions(["values.epochs about 80"], _rec({}))


def test_condition_keys_name_one_place_and_a_scalar():
    """The AutoLoss controller-variance bug: its gate ``frozen >= 50`` meant the config's 50
    frozen controllers, but the old lookup tried values first and found the results dict
    ``values.frozen``, so the gate failed and the claim read inconclusive."""
    rec = _rec({"frozen": {"normalised": {"acc_std": 0.165}}}, {"frozen": 50})
    assert claims.check_conditions(["config.frozen >= 50"], rec) is None
    with pytest.raises(claims.LedgerError, match="resolves to a dict"):
        claims.check_conditions(["values.frozen >= 50"], rec)
    with pytest.raises(claims.LedgerError, match="must name its place"):
        claims.check_conditions(["frozen >= 50"], rec)
    with pytest.raises(claims.LedgerError, match="must name its place"):
        claims.validate(_claim(paper=1.0, ours={"experiment": "e", "key": "k"},
                               check={"kind": "greater", "value": 0}, needs=["epochs >= 80"]))


def test_not_run_and_missing_key_are_told_apart():
    c = [_claim(id="a", paper=1.0, ours={"experiment": "e", "key": "x.y"}, check={"kind": "greater", "value": 0}),
         _claim(id="b", paper=1.0, ours={"experiment": "e", "key": "x.z"}, check={"kind": "greater", "value": 0}),
         _claim(id="c", paper=1.0, ours={"experiment": "gone", "key": "x"}, check={"kind": "greater", "value": 0},
                not_run_reason="no data offline")]
    t = claims.evaluate(c, {"e": _rec({"x": {"y": 1.0}})})
    assert list(t["verdict"]) == ["reproduced", "not run", "not run"]
    assert "missing in the record" in t["why"][1] and t["why"][2] == "no data offline"


def test_spearman_matches_scipy():
    x = [2, 4, 8, 16, 32, 100, 250, 1000]
    y = [0.3, 0.1, 0.5, 0.5, 0.9, 0.7, 1.2, 1.1]
    assert claims.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)


@pytest.mark.parametrize("ours,expected", [
    ({"2": 484.0, "8": 900.0, "100": 1500.0, "1000": 2240.0}, "reproduced"),  # the paper's 4.6x
    ({"2": 219.6, "8": 221.0, "100": 224.0, "1000": 226.9}, "not reproduced"),  # +1.00 rho, 3% effect
    ({"2": 200.0, "8": 260.0, "100": 300.0, "1000": 320.0}, "partly"),
    ({"2": 500.0, "8": 400.0, "100": 300.0, "1000": 200.0}, "not reproduced"),  # wrong direction
    ({"2": 500.0, "1000": 2000.0}, "inconclusive"),
])
def test_trend_needs_direction_and_effect(ours, expected):
    check = {"kind": "trend", "sign": 1, "min_rho": 0.8, "effect": "ratio", "min_effect": 2.0,
             "partly_effect": 1.5}
    assert claims.judge(check, ours, _claim(paper="yes")) == expected


def test_trend_decreasing_difference():
    check = {"kind": "trend", "sign": -1, "min_rho": 0.8, "effect": "diff", "min_effect": 0.05}
    acc = {"2": 0.76, "16": 0.74, "250": 0.66, "1000": 0.60}
    assert claims.judge(check, acc, _claim(paper="yes")) == "reproduced"
    assert claims.judge(check, {"2": 0.60, "16": 0.599, "1000": 0.59}, _claim(paper="yes")) == "not reproduced"


@pytest.mark.parametrize("chapter", registry.CHAPTERS)
def test_every_ledger_loads_and_every_claim_is_checkable(chapter):
    ledger = claims.load_ledger(chapter)
    assert ledger
    for c in ledger:
        kinds = {(ch or {}).get("kind") for ch in (c.check, c.check_paper, c.check_report)}
        judged = kinds - {"info", None}
        assert c.paper_source or c.report_source or c.reference_source or not judged, \
            f"{c.id}: a judged claim needs a published source"
        if c.paper is not None:
            assert c.paper_source, f"{c.id}: a paper value needs its source"
        if c.report is not None:
            assert c.report_source, f"{c.id}: a report value needs its source"
        assert (c.ours or c.not_run_reason) and (c.check or c.check_paper or c.check_report), c.id


def test_ledger_errors_are_caught_on_load():
    with pytest.raises(claims.LedgerError, match="unknown kind"):
        claims.validate(_claim(paper=1.0, ours={"experiment": "e", "key": "k"}, check={"kind": "roughly"}))
    with pytest.raises(claims.LedgerError, match="not a number"):
        claims.validate(_claim(paper="yes", ours={"experiment": "e", "key": "k"},
                               check={"kind": "close", "rtol": 0.1}))
    with pytest.raises(claims.LedgerError, match="trend"):
        claims.validate(_claim(paper="yes", ours={"experiment": "e", "key": "k"},
                               check={"kind": "trend", "sign": 1}))


def test_counts_cover_every_verdict():
    t = claims.evaluate([_claim(paper=1.0, ours={"experiment": "e", "key": "a"},
                                check={"kind": "greater", "value": 0})], {"e": _rec({"a": 1})})
    n = claims.counts(t)
    assert list(n.index) == list(claims.VERDICTS) and n["reproduced"] == 1 and n.sum() == 1
    assert not math.isnan(float(n["inconclusive"]))


def test_book_labels_spell_out_profile_and_staleness():
    from reprobook import book
    c = _claim(paper=1.0, ours={"experiment": "e", "key": "a"}, check={"kind": "greater", "value": 0},
               needs=["config.epochs >= 80"])
    rec = _rec({"a": 1.0}, {"epochs": 4})
    t = book.with_profiles(claims.evaluate([c], {"e": dict(rec, stale=True)}))
    assert t["verdict vs paper"][0] == "inconclusive at small (stale record)"
    html = book.label(t["verdict vs paper"][0])
    assert book.COLOURS["inconclusive"] in html and "stale" in html
    assert book.COLOURS["not reproduced"] in book.label("not reproduced")


def test_a_claim_without_published_value_gets_its_own_verdict_column():
    c = _claim(reference_source="our control", ours={"experiment": "e", "key": "a"},
               check={"kind": "greater", "value": 0})
    row = claims.evaluate_claim(c, {"e": _rec({"a": 1.0})})
    assert row["verdict, no published value"] == "reproduced" and row["verdict vs paper"] == ""


def _rl_record(concrete_first, concrete_last, detached=(22.6, 20.8)):
    """A hand-made cd_rl record: correct agents (concrete, fixed 0.5) and the report's detached
    ones, 500 episodes x 3 seeds; the concrete agent's p falls from 0.3 to 0.2."""
    def variant(first, last):
        return {"first_fifth": first, "last_fifth": last, "improvement": last - first,
                "mean_length": (first + last) / 2}
    v = {"concrete": variant(concrete_first, concrete_last), "fixed-0.5": variant(124.0, 143.4),
         "concrete-detached": variant(*detached)}
    return _rec({"episodes": 500, "seeds": 3, "variants": v,
                 "mean_length": {k: x["mean_length"] for k, x in v.items()},
                 "concrete_p_at": {"tenth": 0.3, "last": 0.2},
                 "detached_improvement": {"concrete-detached": detached[1] - detached[0]}})


RL_CLAIMS = ("rl-p-decreases", "rl-beats-fixed", "rl-report-bug-no-learning")


def test_reinforce_claims_are_judged_once_the_correct_agent_learned():
    """The report's detached log-prob bug: an agent that learned within its first fifth of
    episodes (124 -> 141 steps, an improvement under the old gate's 20) must be judged, and
    the detached agents' flat ~22 steps then show the bug. The old gate read inconclusive."""
    ledger = {c.id: c for c in claims.load_ledger("concrete_dropout")}
    rows = claims.evaluate([ledger[i] for i in RL_CLAIMS], {"cd_rl": _rl_record(123.7, 140.9)})
    got = dict(zip(rows["id"], rows["verdict"]))
    assert got == {"rl-p-decreases": "reproduced", "rl-beats-fixed": "not reproduced",
                   "rl-report-bug-no-learning": "reproduced"}
    # an agent at the random policy's ~22 steps learned nothing: nothing is judged
    rows = claims.evaluate([ledger[i] for i in RL_CLAIMS], {"cd_rl": _rl_record(22.0, 23.0)})
    assert set(rows["verdict"]) == {"inconclusive"}


def test_every_ledger_condition_names_its_place():
    for chapter in ("dropmax", "autoloss", "concrete_dropout", "gsc", "htsr"):
        for c in claims.load_ledger(chapter):
            for cond in [*c.needs, *c.sanity]:
                for key, _, _ in claims._parse_any(cond, c.id):
                    assert key.split(".")[0] in claims.PLACES, (chapter, c.id, key)


def test_headline_tally_counts_only_published_claims():
    """Our own hypotheses, controls and reference-only rows never count as reproductions."""
    chk = {"kind": "greater", "value": 0}
    t = claims.evaluate([_claim(id="p", paper=1.0, ours={"experiment": "e", "key": "a"}, check=chk),
                         _claim(id="o", reference="x", reference_source="our control",
                                ours={"experiment": "e", "key": "a"}, check=chk)],
                        {"e": _rec({"a": 1.0})})
    assert list(t["published"]) == [True, False]
    assert claims.counts(t)["reproduced"] == 1
    assert claims.counts(t, published=False)["reproduced"] == 1
    assert claims.counts(t, published=None)["reproduced"] == 2


# Chance level of each model-quality metric the ledgers gate on, in the record's own units:
# what an untrained network, a random policy or a constant predictor scores.
CHANCE = [
    (r"^values\.error\.", 90.0),  # DropMax: MNIST test error in %, 10 classes
    (r"^values\.(adam_)?final_error\.", 0.9),  # GSC: CIFAR-10 training error, fraction
    (r"^values\.n_trained$", 0),  # GSC: how many networks trained
    (r"^values\.(min_)?test_acc(\.|$)", 0.1),  # HT-SR: 10-class accuracy, fraction
    (r"^values\.classifier\.test_acc$", 0.1),  # AutoLoss: the MNIST classifier of the IS
    (r"^values\.acc\.|^values\.frozen\..*\.q25$", 0.5),  # AutoLoss: balanced binary task
    (r"^values\.transfer\.error\.", 0.5),  # AutoLoss: binary transfer tasks
    (r"mse_raw|^values\.sensitivity\.settings\..*\.median$|^values\.correct\.test_mse_mean$", 13.76),  # AutoLoss: theta = 0
    (r"^values\.is\.", 1.0),  # Inception score of a collapsed generator
    (r"^values\.(accuracy|acc_by_size\.|regularisers\..*\.acc|tuned_dropout\.test)", 10.0),  # %
    (r"dev_acc$", 50.0),  # SST-2, binary, %
    (r"^values\.rmse\.", 2.24),  # synthetic y = 2x + 8 + e: predicting the mean
    (r"^values\.sets\.boston\.rmse$", 9.03),  # UCI: predicting the training mean
    (r"^values\.sets\.kin8nm\.rmse$", 0.265),
    (r"^values\.sets\.wine-red\.rmse$", 0.821),
    (r"^values\.(mpc_return_last|variants\.concrete\.last_fifth)$", 22.0),  # random CartPole policy
    (r"^values\.test_nmse_largest$", 1.0),  # normalised MSE of predicting the mean
]


def _chance(key):
    import re
    return next((v for pat, v in CHANCE if re.search(pat, key)), None)


def test_a_chance_level_model_never_passes_a_trained_model_claim():
    """Every judged claim on an experiment that trains models gates on a model-quality metric
    (or says why none applies), and a model at chance on those metrics fails the gate, so the
    claim reads inconclusive, never reproduced or partly."""
    import yaml
    from reprobook.paths import REPO_ROOT
    for chapter in ("dropmax", "autoloss", "concrete_dropout", "gsc", "htsr"):
        path = REPO_ROOT / "src" / "reprobook" / "ledger" / f"{chapter}.yaml"
        trained = set(yaml.safe_load(path.read_text())["trained_experiments"])
        for c in claims.load_ledger(chapter):
            kinds = {(k or {}).get("kind") for k in (c.check, c.check_paper, c.check_report)}
            if (c.ours or {}).get("experiment") not in trained or kinds <= {None, "info"} \
                    or c.no_model_gate:
                continue
            quality = [cond for cond in c.sanity
                       if any(_chance(k) is not None for k, _, _ in claims._parse_any(cond, c.id))]
            assert quality, f"{chapter} {c.id}: no sanity condition on a model's quality"
            values = {}
            for cond in quality:
                for k, _, _ in claims._parse_any(cond, c.id):
                    cur = values
                    *path_, last = k.split(".")[1:]
                    for p in path_:
                        cur = cur.setdefault(p, {})
                    cur[last] = _chance(k)
            assert claims.check_conditions(quality, _rec(values)) is not None, \
                f"{chapter} {c.id}: a model at chance passes {quality}"


LEDGER = """
trained_experiments: [e]
claims:
- id: a
  statement: s
  paper: 1.0
  ours: {experiment: e, key: x}
  check: {kind: greater, value: 0}
  %s
"""


def test_ledger_load_refuses_an_ungated_trained_model_claim_and_a_repeated_key():
    with pytest.raises(claims.LedgerError, match="no sanity condition"):
        claims.parse_ledger(LEDGER % "needs: [config.epochs >= 1]", "t")
    assert claims.parse_ledger(LEDGER % "sanity: [values.error < 45]", "t")[0].sanity
    assert claims.parse_ledger(LEDGER % "no_model_gate: the layer's shape", "t")[0].no_model_gate
    with pytest.raises(claims.LedgerError, match="duplicate key 'sanity'"):
        claims.parse_ledger(LEDGER % "sanity: [values.error < 45]\n  sanity: [values.x > 0]", "t")


def test_an_info_claim_is_shown_with_its_reason_and_never_gated():
    c = _claim(paper=4.9, ours={"experiment": "e", "key": "q"}, check={"kind": "info"},
               needs=["config.epochs >= 80"], info_reason="holds by construction (the layer's shape)")
    row = claims.evaluate_claim(c, {"e": _rec({"q": 4.9}, {"epochs": 1})})
    assert row["verdict"] == "info" and row["why"] == "holds by construction (the layer's shape)"


def test_a_paper_value_from_an_unverified_source_is_judged_but_not_counted():
    chk = {"kind": "greater", "value": 0}
    c = _claim(paper=1.0, paper_source="paper Table 1 (unverified: not found in any source)",
               ours={"experiment": "e", "key": "a"}, check=chk)
    t = claims.evaluate([c], {"e": _rec({"a": 1.0})})
    assert t["verdict vs paper"][0] == "reproduced" and not t["published"][0]
    assert claims.counts(t)["reproduced"] == 0
    c.report = 1.0  # the report states it too: counted
    assert claims.evaluate([c], {"e": _rec({"a": 1.0})})["published"][0]


def test_argmin_argmax_and_any_between_judge_dicts_of_numbers():
    c = _claim(ours={"experiment": "e", "key": "p"}, check={"kind": "argmax", "value": "fc1"})
    judge = lambda chk, v: claims.judge(chk, v, c)  # noqa: E731
    assert judge({"kind": "argmax", "value": "fc1"}, {"conv1": 0.1, "fc1": 0.5, "fc2": 0.2}) == "reproduced"
    assert judge({"kind": "argmax", "value": "fc1"}, {"conv1": 0.6, "fc1": 0.5}) == "not reproduced"
    assert judge({"kind": "argmax", "value": "fc1"}, {"conv1": 0.5, "fc1": 0.5}) == "not reproduced"  # a tie
    assert judge({"kind": "argmin", "value": "input"}, {"input": 0.01, "h1": 0.2}) == "reproduced"
    assert judge({"kind": "argmin", "value": "input"}, {"input": float("nan"), "h1": 0.2}) == "inconclusive"
    anyb = {"kind": "any-between", "lo": {"p": 0.05, "acc": 1.0}, "hi": {"p": float("inf"), "acc": float("inf")}}
    assert judge(anyb, {"p": 0.01, "acc": 1.5}) == "reproduced"
    assert judge(anyb, {"p": 0.01, "acc": 0.5}) == "not reproduced"
    with pytest.raises(claims.LedgerError):
        claims.validate(_claim(ours={"experiment": "e", "key": "p"}, check={"kind": "argmin"}))


@pytest.mark.parametrize("chapter", registry.CHAPTERS)
def test_every_ledger_experiment_is_registered(chapter):
    """A claim names an experiment of ours only if the runner can run it: a name no code
    computes would read "not run in this build" for ever. A claim with no computation of
    ours has no ``ours`` and says why in ``not_run_reason``."""
    for c in claims.load_ledger(chapter):
        if c.ours:
            assert registry.find(c.ours["experiment"]) is not None, (c.id, c.ours["experiment"])
        else:
            assert c.not_run_reason or (c.check or {}).get("kind") == "info", c.id
