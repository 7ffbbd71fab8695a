"""What a reader sees: verdict tables, cards, the claim explorer and the downloads."""
import json

import pandas as pd

from reprobook import claims, pages


def _table():
    c1 = claims.Claim(id="a-1", chapter="t", statement="A beats B", paper=1.0, report=0.5,
                      paper_source="paper Table 1", report_source="report §2",
                      ours={"experiment": "e", "key": "gain"},
                      check={"kind": "greater", "value": 0.0}, headline="A beats B.")
    c2 = claims.Claim(id="b-2", chapter="t", statement="C is 3", paper=3.0,
                      paper_source="paper §4", ours={"experiment": "e", "key": "c"},
                      check={"kind": "close", "rtol": 0.1}, needs=["config.epochs >= 100"])
    rec = {"values": {"gain": 0.2, "c": float("nan")}, "config": {"epochs": 10},
           "profile": "medium", "provenance": {"commit": "abc"}}
    return claims.evaluate([c1, c2], {"e": rec})


def test_verdict_table_has_an_anchor_per_claim_and_details_in_a_collapsible():
    html = pages.verdict_table_html(_table())
    assert 'id="claim-a-1"' in html and 'id="claim-b-2"' in html
    assert 'href="#claim-a-1"' in html and "<details>" in html and "report §2" in html
    assert html.count("<th>") == 5 and "★" in html  # claim | paper | report | ours | verdict


def test_why_is_in_plain_words():
    assert pages.plain_why("needs config.epochs >= 100 (got 10)").startswith(
        "this run is too small to test it: it needs epochs >= 100")
    assert "did not compute" in pages.plain_why("key 'x.y' missing in the record of e")
    assert pages._num(float("nan")) == "—" and pages._num(441100.0) == "441,100"


def test_card_lists_headline_claims_with_both_verdicts():
    html = pages.card_html("t", "Test", _table(), "../notebooks/t.html")
    assert "Does it reproduce? Test" in html and "A beats B." in html
    assert html.count('class="verdict"') == 2  # against the paper and against the report
    assert 'href="../notebooks/t.html#claim-a-1"' in html and "C is 3" not in html


def test_explorer_and_downloads_hold_every_claim(tmp_path):
    tables = {"dropmax": _table()}
    html = pages.explorer_html(tables)
    assert html.count("<tr data-chapter=") == 2 and "explorer-q" in html
    assert html.index("a-1") < html.index("b-2")  # headline first
    files = pages.write_downloads(tables, tmp_path)
    rows = pd.read_csv(tmp_path / files["verdicts (CSV)"])
    assert list(rows["id"]) == ["a-1", "b-2"] and "verdict vs report" in rows
    data = json.loads((tmp_path / files["verdicts (JSON)"]).read_text())
    assert data[0]["paper source"] == "paper Table 1"
    assert (tmp_path / "ledger" / "dropmax.yaml").exists()
