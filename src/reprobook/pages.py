"""What a reader sees of the verdicts: tables that fit the page, the "Does it reproduce?"
card, the claim explorer and the downloads. Everything here renders rows that
:func:`reprobook.claims.evaluate` computed; nothing is judged here.
"""
from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pandas as pd

from .paths import REPO_ROOT

DOWNLOADS = REPO_ROOT / "_build" / "downloads"  # copied into the HTML book as downloads/
COLOURS = {"reproduced": "#2e7d32", "partly": "#9e7c00", "not reproduced": "#c62828",
           "inconclusive": "#5e6b78", "not run": "#9e9e9e", "info": "#1b6ca8"}
CSS = """<style>
table.verdicts{table-layout:fixed;width:100%;font-size:0.82em;border-collapse:collapse}
table.verdicts td,table.verdicts th{vertical-align:top;padding:4px 6px;overflow-wrap:anywhere;
 border-bottom:1px solid #e3e3e3;text-align:left}
table.verdicts col.c{width:47%} table.verdicts col.n{width:11%} table.verdicts col.v{width:20%}
table.verdicts details{color:#555;margin-top:2px} table.verdicts summary{cursor:pointer;color:#1b6ca8}
table.verdicts .verdict{white-space:normal;display:inline-block;margin:1px 0}
table.verdicts tr:target{background:#fff6d5}
.claim-id{font-size:0.85em}
</style>"""


def anchor(claim_id: str) -> str:
    return f"claim-{claim_id}"


def id_link(claim_id: str, page: str = "") -> str:
    """A claim id that links to its row (``page``: another page's URL, else this page)."""
    return (f'<a class="claim-id" href="{page}#{anchor(claim_id)}"><code>'
            f"{html.escape(claim_id)}</code></a>")


def badge(verdict: str) -> str:
    if not verdict:
        return ""
    base = max((v for v in COLOURS if verdict.startswith(v)), key=len, default="")
    return (f'<span class="verdict" style="background:{COLOURS.get(base, "#777")};color:#fff;'
            f'padding:1px 6px;border-radius:3px">{html.escape(verdict)}</span>')


def plain_why(why: str) -> str:
    """The reason a verdict could not be reached, in words a reader can follow."""
    if not why:
        return ""
    why = re.sub(r"key '([^']+)' missing in the record of (\w+)",
                 r"this run did not compute it (no value \1 in the \2 record)", why)
    why = re.sub(r"^needs ", "this run is too small to test it: it needs ", why)
    why = re.sub(r"^sanity: ", "the run failed a sanity condition (the model did not train, or the quantity collapsed): ", why)
    return why.replace("values.", "").replace("config.", "")


def _num(v) -> str:
    """Numbers to 4 significant figures, '—' for missing."""
    if v is None or v == "" or v == "–" or (isinstance(v, float) and v != v):
        return "—"
    try:
        x = float(v)
    except (TypeError, ValueError):
        return html.escape(str(v))
    if x != x:
        return "—"
    return f"{x:.4g}" if abs(x) < 1e5 else f"{x:,.0f}"


def verdict_table_html(table: pd.DataFrame) -> str:
    """One row per claim: id (anchored) and statement, paper, report, ours, both verdicts.
    Sources, the reason and the run are in a collapsible detail under the statement, so the
    verdicts stay in view in the book's column."""
    rows = []
    for _, r in table.iterrows():
        detail = [f"<b>{k}</b>: {html.escape(str(r.get(k)))}" for k in
                  ("paper source", "report source", "reference", "reference source")
                  if str(r.get(k) or "") not in ("", "–")]
        why = plain_why(str(r.get("why") or ""))
        if why:
            detail.append(f"<b>why</b>: {html.escape(why)}")
        if r.get("run"):
            detail.append(f"<b>record</b>: {html.escape(str(r.get('run')))} "
                          f"({html.escape(str(r.get('experiment')))}, key "
                          f"<code>{html.escape(str(r.get('key')))}</code>)")
        verdicts = []
        for col, who in (("verdict vs paper", "paper"), ("verdict vs report", "report"),
                         ("verdict, no published value", "ours only")):
            if r.get(col):
                verdicts.append(f"<small>{who}</small> {badge(str(r[col]))}")
        head = "★ " if r.get("headline") else ""
        rows.append(
            f'<tr id="{anchor(r["id"])}"><td>{head}{id_link(r["id"])} '
            f'{html.escape(str(r["claim"]))}'
            + (f"<details><summary>sources, why</summary>{'<br>'.join(detail)}</details>"
               if detail else "")
            + f'</td><td>{_num(r.get("paper"))}</td><td>{_num(r.get("report"))}</td>'
            f'<td>{_num(r.get("ours"))}</td><td>{"<br>".join(verdicts)}</td></tr>')
    return (CSS + '<table class="verdicts"><colgroup><col class="c"><col class="n">'
            '<col class="n"><col class="n"><col class="v"></colgroup><thead><tr>'
            "<th>claim</th><th>paper</th><th>report</th><th>ours</th><th>verdict</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table>")


def card_html(chapter: str, title: str, table: pd.DataFrame, page: str = "") -> str:
    """The chapter's "Does it reproduce?" card (sphinx-design's card style): each headline
    claim in one sentence with its verdicts against the paper and the report, ours beside the
    published numbers, the profile it was judged at, and what would decide it."""
    items = []
    for _, r in table[table["headline"] != ""].iterrows():
        v = [f"paper {badge(str(r['verdict vs paper']))}" if r.get("verdict vs paper") else "",
             f"report {badge(str(r['verdict vs report']))}" if r.get("verdict vs report") else ""]
        ours = ("ours (lower end of its 95 % interval)" if str(r.get("key", "")).endswith(".lo")
                else "ours")
        nums = " · ".join(f"{label} {_num(r.get(k))}" for k, label in
                          (("paper", "paper"), ("report", "report"), ("ours", ours))
                          if _num(r.get(k)) != "—")
        why = plain_why(str(r.get("why") or ""))
        decide = (f"<br><small>To decide it: {html.escape(why)}</small>"
                  if str(r["verdict"]).startswith(("inconclusive", "not run")) and why else "")
        at = f" (judged at <code>{html.escape(str(r['profile']))}</code>)" if r.get("profile") else ""
        items.append(f"<li>{html.escape(str(r['headline']))} {' '.join(x for x in v if x)}"
                     f"<br><small>{nums}{at} · {id_link(r['id'], page)}</small>{decide}</li>")
    body = "<ul>" + "".join(items) + "</ul>" if items else "<p>No headline claim marked.</p>"
    body += card_figure(table[table["headline"] != ""])
    return (f'<div class="sd-card sd-sphinx-override sd-mb-3 sd-shadow-sm">'
            f'<div class="sd-card-header"><b>Does it reproduce? {html.escape(title)}</b></div>'
            f'<div class="sd-card-body">{body}</div></div>')


def card_figure(rows: pd.DataFrame) -> str:
    """Ours beside the published numbers of the headline claims that have numbers on both
    sides, drawn on one axis (an inline PNG); empty when there is none."""
    import base64
    import io

    def num(v):
        try:
            return float(v) == float(v)
        except (TypeError, ValueError):
            return False
    rows = rows[[num(r["ours"]) and (num(r["paper"]) or num(r["report"]))
                 for _, r in rows.iterrows()]]
    if rows.empty:
        return ""
    import matplotlib.pyplot as plt

    from .plotting import published_vs_ours
    fig = published_vs_ours(rows, xlabel="value of the claim's quantity")
    fig.set_size_inches(6.5, 0.45 * len(rows) + 1.0)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    alt = ("Dot plot of the headline claims with numbers: one row per claim id, ours as a filled "
           "dot, the paper's value as an open square, the report's as an open triangle.")
    return (f'<img alt="{alt}" style="max-width:100%" src="data:image/png;base64,'
            f'{base64.b64encode(buf.getvalue()).decode()}">')


EXPLORER_JS = """<script>
(function(){const t=document.getElementById('claim-explorer');if(!t)return;
const q=document.getElementById('explorer-q'),f=[...document.querySelectorAll('.explorer-f')];
function apply(){const s=q.value.toLowerCase();const sel=Object.fromEntries(f.map(x=>[x.dataset.col,x.value]));
for(const r of t.tBodies[0].rows){let ok=r.textContent.toLowerCase().includes(s);
for(const [c,v] of Object.entries(sel)){if(v&&r.dataset[c]!==v)ok=false}
r.style.display=ok?'':'none'}}
q.addEventListener('input',apply);f.forEach(x=>x.addEventListener('change',apply));
[...t.tHead.rows[0].cells].forEach((th,i)=>{th.style.cursor='pointer';th.addEventListener('click',()=>{
const rows=[...t.tBodies[0].rows];const d=th.dataset.dir==='a'?-1:1;th.dataset.dir=d>0?'a':'d';
rows.sort((a,b)=>a.cells[i].textContent.localeCompare(b.cells[i].textContent,undefined,{numeric:true})*d);
rows.forEach(r=>t.tBodies[0].appendChild(r))})});})();
</script>"""


def explorer_html(tables: dict[str, pd.DataFrame]) -> str:
    """Every claim of every chapter in one searchable, sortable, filterable table (plain
    JavaScript, no network), headline claims first; each row links to its chapter's row."""
    rows = pd.concat([t.assign(chapter=ch) for ch, t in tables.items()], ignore_index=True)
    rows = rows.assign(h=rows["headline"] == "").sort_values(["h", "chapter"], kind="stable")
    opts = {"chapter": list(tables), "vpaper": sorted(set(rows["verdict vs paper"]) - {""}),
            "vreport": sorted(set(rows["verdict vs report"]) - {""}),
            "headline": ["yes", "no"], "profile": sorted(set(rows["profile"]) - {""})}
    selects = "".join(
        f'<label style="margin-right:8px">{name} <select class="explorer-f" data-col="{name}">'
        f'<option value="">all</option>'
        + "".join(f"<option>{html.escape(o)}</option>" for o in vals) + "</select></label>"
        for name, vals in opts.items())
    body = []
    for _, r in rows.iterrows():
        page = f"../notebooks/{r['chapter']}.html"
        body.append(
            f'<tr data-chapter="{r["chapter"]}" data-vpaper="{html.escape(r["verdict vs paper"])}" '
            f'data-vreport="{html.escape(r["verdict vs report"])}" '
            f'data-headline="{"yes" if r["headline"] else "no"}" '
            f'data-profile="{html.escape(str(r["profile"]))}">'
            f'<td>{r["chapter"]}</td><td>{"★ " if r["headline"] else ""}'
            f'{id_link(r["id"], page)} {html.escape(str(r["headline"] or r["claim"]))}</td>'
            f'<td>{_num(r["ours"])}</td><td>{badge(r["verdict vs paper"])}</td>'
            f'<td>{badge(r["verdict vs report"])}</td><td>{html.escape(str(r["profile"]))}</td>'
            f'<td><a href="../downloads/ledger/{r["chapter"]}.yaml">ledger</a>'
            + (f'<br><a href="../downloads/records/{html.escape(r["record"])}">record</a>'
               if r.get("record") else "") + "</td></tr>")
    return (CSS + '<div><input id="explorer-q" placeholder="search claims" '
            f'style="width:40%;margin:0 8px 6px 0">{selects}</div>'
            '<div style="max-height:70vh;overflow-y:auto"><table id="claim-explorer" '
            'class="verdicts"><colgroup><col style="width:11%"><col style="width:43%">'
            '<col style="width:8%"><col style="width:13%"><col style="width:13%">'
            '<col style="width:6%"><col style="width:6%"></colgroup><thead><tr><th>chapter</th>'
            "<th>claim (★ headline)</th><th>ours</th><th>vs paper</th><th>vs report</th>"
            f"<th>profile</th><th>source</th></tr></thead><tbody>{''.join(body)}</tbody>"
            "</table></div>" + EXPLORER_JS)


DOWNLOAD_COLUMNS = ["chapter", "id", "headline", "claim", "paper", "paper source", "report",
                    "report source", "reference", "reference source", "ours", "verdict vs paper",
                    "verdict vs report", "verdict, no published value", "published", "why",
                    "profile", "run", "experiment", "key", "record", "stale"]


def write_downloads(tables: dict[str, pd.DataFrame], out: Path = DOWNLOADS) -> dict[str, str]:
    """The verdicts (CSV, JSON: one row per claim), each chapter's ledger, and the records the
    verdicts were read from (``records/<profile>/<experiment>/<hash>.json``, the data of the
    chapters' tables and figures too), under ``out`` (the book serves it as ``downloads/``).
    Returns {label: path relative to ``out``}."""
    out.mkdir(parents=True, exist_ok=True)
    rows = pd.concat([t.assign(chapter=ch) for ch, t in tables.items()], ignore_index=True)
    rows = rows[[c for c in DOWNLOAD_COLUMNS if c in rows]]
    rows.to_csv(out / "verdicts.csv", index=False)
    (out / "verdicts.json").write_text(json.dumps(rows.to_dict("records"), indent=1, default=str))
    from .paths import committed_root, work_root
    for rel in sorted(set(rows.get("record", pd.Series(dtype=str))) - {""}):
        src = next((r / rel for r in (committed_root(), work_root()) if (r / rel).exists()), None)
        if src is not None:  # the record each verdict was read from (a figure's data too)
            (out / "records" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, out / "records" / rel)
    (out / "ledger").mkdir(exist_ok=True)
    files = {"verdicts (CSV)": "verdicts.csv", "verdicts (JSON)": "verdicts.json"}
    for ch in tables:
        src = REPO_ROOT / "src" / "reprobook" / "ledger" / f"{ch}.yaml"
        shutil.copy(src, out / "ledger" / f"{ch}.yaml")
        files[f"ledger: {ch}"] = f"ledger/{ch}.yaml"
    return files
