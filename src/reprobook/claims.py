"""The claims ledger: every number and conclusion of the papers and reports, as data.

Ledger files live in ``reprobook/ledger/<chapter>.yaml``. A claim names its sources and the
published values (``paper``/``paper_source``, ``report``/``report_source``, and
``reference``/``reference_source`` for third-party numbers), where our number comes from
(``ours: {experiment, key}``, a dotted path into a results record's ``values``), a ``check``
that turns our number into a verdict (``check_paper``/``check_report`` override it for one
column), and what a run must satisfy before the check means anything: ``needs`` (budget
conditions on the record) and ``sanity`` (the experiment did its job: every model the claim
reads trained, e.g. its test error well below chance). A condition names one place of the
record, ``values.<key>`` or ``config.<key>``, and a scalar there (:func:`record_value`).
Verdicts are computed here and nowhere else, one per source column; the headline tally
(:func:`counts`) counts only claims the paper or the report published:

- ``reproduced``, ``partly``, ``not reproduced``: from the check;
- ``inconclusive``: a ``needs`` or ``sanity`` condition failed (or our value is NaN, or a trend
  has too few points): the test cannot discriminate in this run; the row says why;
- ``not run``: no record of that experiment exists, or the record lacks the key;
- ``info``: a ``kind: info`` claim, shown but never judged.
"""
from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, field
from importlib import resources

import pandas as pd
import yaml

VERDICTS = ("reproduced", "partly", "not reproduced", "inconclusive", "not run", "info")
SOURCES = ("paper", "report")
CHECK_KINDS = ("greater", "less", "between", "close", "true", "fraction", "trend", "equals",
               "ordered", "all-between", "any-between", "argmin", "argmax", "info")


class LedgerError(ValueError):
    """A ledger entry is malformed (caught when the ledger is loaded)."""


@dataclass
class Claim:
    id: str
    chapter: str
    statement: str
    paper_source: str | None = None
    paper: object = None
    report_source: str | None = None
    report: object = None
    reference_source: str | None = None
    reference: object = None
    ours: dict | None = None
    check: dict | None = None
    check_paper: dict | None = None
    check_report: dict | None = None
    needs: list = field(default_factory=list)
    sanity: list = field(default_factory=list)
    not_run_reason: str | None = None
    no_model_gate: str | None = None  # why a claim on a trained model needs no sanity condition
    info_reason: str | None = None  # why a claim is shown but never judged (kind: info)
    headline: str | None = None  # a central claim of the paper or report, in one plain sentence
    note: str | None = None
    extra: dict = field(default_factory=dict)

    def sources(self) -> list[str]:
        """The source columns this claim has a value for (``paper``, ``report``)."""
        return [s for s in SOURCES if getattr(self, s) is not None]

    def published(self) -> bool:
        """Counted in the headline tally: the report states it, or the paper does with a
        source a reader can open (a paper value whose source says "unverified" is judged but
        not counted)."""
        return self.report is not None or (
            self.paper is not None and "unverified" not in (self.paper_source or "").lower())

    def check_for(self, source: str | None) -> dict | None:
        """The check of one verdict column (its override, else ``check``)."""
        return (getattr(self, f"check_{source}") if source else None) or self.check


# ----------------------------------------------------------------------------- loading
class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses a key given twice in one mapping (plain YAML keeps the
    last one silently: a second ``sanity:`` would drop the first's conditions)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise LedgerError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_ledger(chapter: str) -> list[Claim]:
    """The claims of ``reprobook/ledger/<chapter>.yaml``, checked (:func:`parse_ledger`)."""
    text = resources.files("reprobook.ledger").joinpath(f"{chapter}.yaml").read_text()
    return parse_ledger(text, chapter)


def parse_ledger(text: str, chapter: str) -> list[Claim]:
    """Claims from a ledger's YAML text; a LedgerError for a malformed entry, a key given twice,
    or a judged claim on a ``trained_experiments`` entry without a sanity condition."""
    doc = yaml.load(text, Loader=_StrictLoader)
    claims = []
    for raw in doc["claims"]:
        raw = dict(raw)
        known = {k: raw.pop(k) for k in list(raw) if k in Claim.__dataclass_fields__}
        claims.append(Claim(chapter=chapter, **known, extra=raw))
    ids = [c.id for c in claims]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise LedgerError(f"duplicate claim ids in ledger {chapter}: {', '.join(dup)}")
    trained = set(doc.get("trained_experiments", []))
    from .registry import find
    for c in claims:
        validate(c)
        exp = find((c.ours or {}).get("experiment") or "")
        if exp is not None and exp.outputs and c.ours.get("key", "").split(".")[0] not in exp.outputs:
            raise LedgerError(f"ledger {chapter}, claim {c.id}: key {c.ours['key']!r} is not among "
                              f"the outputs {exp.name} declares ({', '.join(exp.outputs)})")
        judged = {(k or {}).get("kind") for k in (c.check, c.check_paper, c.check_report)} - {None, "info"}
        if judged and (c.ours or {}).get("experiment") in trained and not (c.sanity or c.no_model_gate):
            raise LedgerError(f"ledger {chapter}, claim {c.id}: it reads a trained model "
                              f"({c.ours['experiment']}) but has no sanity condition on that model's "
                              "quality; add one, or say in no_model_gate why none applies")
    return claims


def _label(v) -> str:
    """A published label as compared: no case, hyphens or runs of spaces ("Bulk-decay" is
    "bulk decay")."""
    return re.sub(r"[\s\-_]+", " ", str(v)).strip().lower()


def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def validate(c: Claim) -> None:
    """Reject what would make a verdict meaningless: unknown kinds, ``true`` checks without
    a stated criterion, ``close`` checks against a non-number, and two sources that say
    different things judged by one check."""
    where = f"ledger {c.chapter}, claim {c.id}"
    for name in ("check", "check_paper", "check_report"):
        chk = getattr(c, name)
        if chk is None:
            continue
        kind = chk.get("kind")
        if kind not in CHECK_KINDS:
            raise LedgerError(f"{where}: {name} has unknown kind {kind!r} (kinds: {', '.join(CHECK_KINDS)})")
        if kind == "true" and not chk.get("criterion"):
            raise LedgerError(f"{where}: a 'true' check must state its criterion")
        if kind in ("argmin", "argmax") and "value" not in chk:
            raise LedgerError(f"{where}: an {kind} check names the key it expects in 'value'")
        if kind == "trend" and not {"sign", "min_rho", "effect", "min_effect"} <= set(chk):
            raise LedgerError(f"{where}: a trend check needs sign, min_rho, effect and min_effect")
    for s in c.sources() or [None]:
        chk = c.check_for(s)
        if chk and chk.get("kind") == "close":
            target = chk.get("target", s)
            t = getattr(c, target) if isinstance(target, str) else target
            if not _is_num(t):
                raise LedgerError(f"{where}: close check against {target!r} = {t!r}, not a number")
    p, r = c.paper, c.report
    if (p is not None and r is not None and not _is_num(p) and not _is_num(r)
            and _label(p) != _label(r)
            and c.check_paper is None and c.check_report is None):
        raise LedgerError(f"{where}: paper ({p!r}) and report ({r!r}) differ; give check_paper "
                          "or check_report so each column is judged by its own statement")
    for cond in [*c.needs, *c.sanity]:
        _parse_any(cond, where)


# ----------------------------------------------------------------------------- conditions
_OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
        ">": operator.gt, "<": operator.lt}
_COND = re.compile(r"^\s*([\w.\-]+)\s*(>=|<=|==|!=|>|<)\s*(.+?)\s*$")


def _parse(cond: str, where: str = "condition"):
    m = _COND.match(str(cond))
    if not m:
        raise LedgerError(f"{where}: cannot read condition {cond!r} (form: 'key >= value')")
    key, op, raw = m.groups()
    low = raw.lower()
    value = True if low == "true" else False if low == "false" else raw
    if isinstance(value, str):
        try:
            value = float(raw)
        except ValueError:
            pass
    return key, op, value


def _parse_any(cond, where):
    if isinstance(cond, dict):
        if set(cond) != {"any"} or not isinstance(cond["any"], list):
            raise LedgerError(f"{where}: a compound condition is {{any: [cond, ...]}}, got {cond!r}")
        parts = [_parse(c, where) for c in cond["any"]]
    else:
        parts = [_parse(cond, where)]
    for key, _, _ in parts:
        if key.partition(".")[0] not in PLACES or "." not in key:
            raise LedgerError(f"{where}: condition key {key!r} must name its place: "
                              "values.<key> or config.<key>")
    return parts


def lookup(values: dict, key: str):
    """Follow a dotted key (``rate.layer-tanh``) through nested dicts."""
    cur = values
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


PLACES = ("values", "config")


def record_value(record: dict, key: str):
    """A condition's key names exactly one place of the record: ``values.<key>`` (what the run
    computed) or ``config.<key>`` (what it was asked to run). A key found in one place never
    stands in for the other: a config setting ``frozen`` and a values entry ``frozen`` are two
    things. A key that resolves to a mapping or a list is a ledger error, never a comparison."""
    place, _, rest = key.partition(".")
    if place not in PLACES or not rest:
        raise LedgerError(f"condition key {key!r} must name its place: values.<key> or "
                          "config.<key>")
    v = lookup(record.get(place, {}), rest)
    if isinstance(v, (dict, list, tuple)):
        raise LedgerError(f"condition key {key!r} resolves to a {type(v).__name__}, not a "
                          "number, boolean or string: name the entry inside it")
    return v


def _fmt_val(v) -> str:
    return f"{v:.4g}" if _is_num(v) else repr(v) if isinstance(v, str) else str(v)


def check_conditions(conds: list, record: dict) -> str | None:
    """``None`` when every condition holds, else the first failure, e.g.
    ``needs cifar_epochs >= 80 (got 15)``."""
    for cond in conds:
        parts = _parse_any(cond, "condition")
        got = []
        for key, op, value in parts:
            v = record_value(record, key)
            if v is None:
                got.append(f"{key} {op} {_fmt_val(value)} (key missing in record)")
                continue
            try:
                ok = _OPS[op](v, value)
            except TypeError:
                ok = False
            if ok:
                break
            got.append(f"{key} {op} {_fmt_val(value)} (got {_fmt_val(v)})")
        else:
            return " or ".join(got)
    return None


# ----------------------------------------------------------------------------- checks
def spearman(x, y) -> float:
    """Spearman rank correlation (average ranks for ties), without SciPy."""
    rx, ry = pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy()
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = math.sqrt((rx ** 2).sum() * (ry ** 2).sum())
    return float((rx * ry).sum() / den) if den > 0 else float("nan")


def _trend(check: dict, ours) -> tuple[str, str]:
    if not isinstance(ours, dict):
        raise TypeError(f"a trend check needs a mapping x -> y, got {type(ours).__name__}")
    pts = sorted((float(k), float(v)) for k, v in ours.items()
                 if v is not None and _is_num(v) and not math.isnan(v))
    if len(pts) < 3:
        return "inconclusive", f"only {len(pts)} points with a value (a trend needs 3)"
    xs, ys = zip(*pts)
    sign = 1 if check["sign"] > 0 else -1
    rho = spearman(xs, ys)
    y_lo, y_hi = ys[0], ys[-1]  # y at the smallest and at the largest x
    if check["effect"] == "ratio":
        if y_lo <= 0 or y_hi <= 0:
            return "inconclusive", "a ratio effect needs positive values"
        effect = y_hi / y_lo if sign > 0 else y_lo / y_hi
    elif check["effect"] == "diff":
        effect = (y_hi - y_lo) * sign
    else:
        raise LedgerError(f"trend effect must be 'ratio' or 'diff', not {check['effect']!r}")
    detail = f"Spearman ρ = {rho:+.2f} (needs {'+' if sign > 0 else '−'}{check['min_rho']}), " \
             f"{check['effect']} = {effect:.3g} (needs ≥ {check['min_effect']})"
    direction = rho * sign >= check["min_rho"]
    if direction and effect >= check["min_effect"]:
        return "reproduced", detail
    if direction and effect >= check.get("partly_effect", float("inf")):
        return "partly", detail
    return "not reproduced", detail


def judge(check: dict, ours, claim: Claim, source: str | None = "paper") -> str:
    """Turn our value into a verdict against one source column (see :func:`judge_detail`)."""
    return judge_detail(check, ours, claim, source)[0]


def judge_detail(check: dict, ours, claim: Claim, source: str | None = "paper") -> tuple[str, str]:
    """(verdict, how it was judged). Kinds: ``greater``/``less`` (``value``, optional
    ``partly``), ``between`` (``lo``, ``hi``, optional ``partly_lo``/``partly_hi``), ``close``
    (to ``target``: by default the judged column's value, else ``paper``/``report``/
    ``reference``/a number; ``rtol``/``atol`` and ``partly_rtol``/``partly_atol``), ``true``
    (a real boolean equal to ``expect``, default true; the ledger states its criterion), ``fraction`` (``min``, ``partly``),
    ``trend`` (see :func:`_trend`), ``equals`` (a label equal to ``value``, default the judged
    column's, compared without case, hyphens or spaces), ``ordered`` (a dict of numbers whose
    keys listed in ``order`` increase strictly), ``all-between`` (every number of a dict, or of
    the keys in ``keys``, in [``lo``, ``hi``]; a bound may be a dict with one bound per key),
    ``any-between`` (the same, for at least one of them), ``argmin``/``argmax`` (the key of a
    dict of numbers with the smallest/largest value is ``value``), ``info`` (never judged)."""
    kind = check["kind"]
    if kind == "info":
        return "info", ""
    if kind == "equals":
        want = check.get("value", getattr(claim, source) if source else None)
        ok = _label(ours) == _label(want)
        return ("reproduced" if ok else "not reproduced"), f"ours {ours!r}, published {want!r}"
    if kind in ("ordered", "all-between", "any-between", "argmin", "argmax"):
        if not isinstance(ours, dict):
            raise TypeError(f"claim {claim.id}: check {kind!r} needs a dict of numbers, got {ours!r}")
        keys = check.get("order") or check.get("keys") or sorted(ours)
        xs = [ours.get(k) for k in keys]
        if any(x is None or not _is_num(x) or math.isnan(x) for x in xs):
            return "inconclusive", f"no number for some of {', '.join(map(str, keys))}"
        shown = ", ".join(f"{k} {x:.4g}" for k, x in zip(keys, xs))
        if kind == "ordered":
            ok = all(a < b for a, b in zip(xs, xs[1:]))
            return ("reproduced" if ok else "not reproduced"), f"{' < '.join(map(str, keys))}? {shown}"
        if kind in ("argmin", "argmax"):
            best = (min if kind == "argmin" else max)(zip(xs, keys))[1]
            ties = sum(x == dict(zip(keys, xs))[best] for x in xs) > 1
            ok = best == check["value"] and not ties
            word = "smallest" if kind == "argmin" else "largest"
            return ("reproduced" if ok else "not reproduced"), \
                f"{check['value']} the {word}? {shown}"
        lo, hi = ({k: b[k] for k in keys} if isinstance(b, dict) else dict.fromkeys(keys, b)
                  for b in (check["lo"], check["hi"]))  # one bound for all, or one per key
        inside = [lo[k] <= x <= hi[k] for k, x in zip(keys, xs)]
        ok = all(inside) if kind == "all-between" else any(inside)
        word = "all" if kind == "all-between" else "any"
        if not isinstance(check["lo"], dict) and not isinstance(check["hi"], dict):
            return ("reproduced" if ok else "not reproduced"), \
                f"{word} in [{check['lo']}, {check['hi']}]? {shown}"
        each = "; ".join(f"{k} {x:.4g} in [{lo[k]:g}, {hi[k]:g}]" for k, x in zip(keys, xs))
        return ("reproduced" if ok else "not reproduced"), f"{word} of: {each}?"
    if kind == "true":
        if not isinstance(ours, bool):
            raise TypeError(f"claim {claim.id}: a 'true' check needs a real boolean, got {ours!r}")
        expect = check.get("expect", True)  # expect: false judges a statement that says "no"
        return ("reproduced" if ours is expect else "not reproduced"), check["criterion"]
    if kind == "trend":
        return _trend(check, ours)
    if not _is_num(ours):
        raise TypeError(f"claim {claim.id}: check {kind!r} needs a number, got {ours!r}")
    x = float(ours)
    if math.isnan(x):
        return "inconclusive", "our value is NaN (the fit or the run produced no number)"
    if kind == "fraction":
        if x >= check["min"]:
            return "reproduced", f"share {x:.2f} ≥ {check['min']}"
        ok = x >= check.get("partly", 1.1)
        return ("partly" if ok else "not reproduced"), f"share {x:.2f} (needs ≥ {check['min']})"
    if kind in ("greater", "less"):
        cmp = operator.gt if kind == "greater" else operator.lt
        sym = ">" if kind == "greater" else "<"
        detail = f"{x:.4g} {sym} {check['value']}?"
        if cmp(x, check["value"]):
            return "reproduced", detail
        ok = "partly" in check and cmp(x, check["partly"])
        return ("partly" if ok else "not reproduced"), detail
    if kind == "between":
        detail = f"{x:.4g} in [{check['lo']}, {check['hi']}]?"
        if check["lo"] <= x <= check["hi"]:
            return "reproduced", detail
        plo, phi = check.get("partly_lo"), check.get("partly_hi")
        ok = plo is not None and plo <= x <= phi
        return ("partly" if ok else "not reproduced"), detail
    if kind == "close":
        target = check.get("target", source or "paper")
        t = getattr(claim, target) if isinstance(target, str) else target
        if not _is_num(t):
            raise LedgerError(f"claim {claim.id}: close-check target {target!r} is not a number")
        err = abs(x - t)
        tol = check.get("atol", abs(t) * check.get("rtol", 0.0))
        ptol = check.get("partly_atol", abs(t) * check.get("partly_rtol", 0.0))
        detail = f"|{x:.4g} − {t:.4g}| = {err:.3g} (tolerance {tol:.3g})"
        if err <= tol:
            return "reproduced", detail
        return ("partly" if err <= ptol else "not reproduced"), detail
    raise LedgerError(f"claim {claim.id}: unknown check kind {kind!r}")


# ----------------------------------------------------------------------------- evaluation
def _provenance(rec: dict) -> str:
    return f"{rec.get('profile', '?')} @ {str(rec.get('provenance', {}).get('commit', '?'))[:8]}"


def evaluate_claim(c: Claim, results: dict[str, dict]) -> dict:
    """One claim's row: our value, a verdict per source column, why, and the run used."""
    row = {"id": c.id, "claim": c.statement, "paper": _fmt(c.paper),
           "paper source": c.paper_source or "", "report": _fmt(c.report),
           "report source": c.report_source or "", "reference": _fmt(c.reference),
           "reference source": c.reference_source or "", "ours": "–", "profile": "",
           "verdict vs paper": "", "verdict vs report": "", "verdict, no published value": "",
           "verdict": "not run", "published": c.published(),
           "why": "", "run": "", "stale": False, "headline": c.headline or "",
           "key": (c.ours or {}).get("key", ""), "experiment": (c.ours or {}).get("experiment", ""),
           "record": ""}
    exp = (c.ours or {}).get("experiment")
    if not (c.ours and (c.check or c.check_paper or c.check_report)):
        row["why"] = c.not_run_reason or "no computation of ours is defined for this claim"
        return _fill(row, c, "not run")
    if exp not in results:
        row["why"] = c.not_run_reason or f"experiment {exp} not run in this build"
        return _fill(row, c, "not run")
    rec = results[exp]
    values = rec.get("values", rec)
    ours = lookup(values, c.ours["key"])
    row.update(run=_provenance(rec), profile=rec.get("profile", ""), stale=bool(rec.get("stale")),
               record=(f"{rec.get('profile')}/{exp}/{rec['config_hash']}.json"
                       if rec.get("config_hash") else ""))
    if ours is None:
        row["why"] = f"key {c.ours['key']!r} missing in the record of {exp}"
        return _fill(row, c, "not run")
    row["ours"] = _fmt(ours)
    if {k["kind"] for k in (c.check, c.check_paper, c.check_report) if k} == {"info"}:
        row["why"] = c.info_reason or ""  # shown, never judged: no condition applies
        return _fill(row, c, "info")
    failed = check_conditions(c.needs, rec)
    failed = f"needs {failed}" if failed else None
    if failed is None:
        bad = check_conditions(c.sanity, rec)
        failed = f"sanity: {bad}" if bad else None
    if failed:
        row["why"] = failed
        return _fill(row, c, "inconclusive")
    details = []
    for s in c.sources() or [None]:
        chk = c.check_for(s)
        if chk is None:
            continue
        verdict, detail = judge_detail(chk, ours, c, s)
        row[f"verdict vs {s}" if s else "verdict, no published value"] = verdict
        if row["verdict"] == "not run":  # the primary verdict: vs paper, else vs report
            row["verdict"] = verdict
        if detail and detail not in details:
            details.append(detail)
    row["why"] = c.info_reason if row["verdict"] == "info" and c.info_reason else "; ".join(details)
    return row


def _fill(row: dict, c: Claim, verdict: str) -> dict:
    row["verdict"] = verdict
    for s in c.sources() or [None]:
        row[f"verdict vs {s}" if s else "verdict, no published value"] = verdict
    return row


def evaluate(claims: list[Claim], results: dict[str, dict]) -> pd.DataFrame:
    """One row per claim with our value and its verdicts.

    ``results`` maps experiment name to a results record (or to its ``values`` dict with a
    ``profile`` key); experiments missing from it make their claims ``not run``.
    """
    return pd.DataFrame([evaluate_claim(c, results) for c in claims])


def _fmt(v):
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        def order(k):
            try:
                return (0, float(k), "")
            except ValueError:
                return (1, 0.0, str(k))
        if all(_is_num(x) for x in v.values()):
            return ", ".join(f"{k}: {v[k]:.4g}" for k in sorted(v, key=order))
        return "; ".join(f"{k}: ({_fmt(v[k])})" if isinstance(v[k], dict) else f"{k}: {_fmt(v[k])}"
                         for k in sorted(v, key=order))  # nested: every number to 4 digits
    return str(v)


def counts(table: pd.DataFrame, column: str = "verdict", published: bool | None = True) -> pd.Series:
    """How many claims got each verdict (the primary one by default). ``published=True`` (the
    headline tally) counts only claims the paper or the report states; ``False`` only our own
    checks (hypotheses, controls, reference-only rows); ``None`` all of them."""
    if published is not None and "published" in table:
        table = table[table["published"] == published]
    col = table[column][table[column] != ""] if column in table else table[column]
    return col.value_counts().reindex(list(VERDICTS), fill_value=0)
