"""Shared by the benchmarks: one table of ratios in results/bench.json (the status page shows it)."""
import json
from datetime import datetime, timezone

from reprobook.results import atomic_write_json
from reprobook.paths import committed_root
from reprobook.provenance import git_commit, hardware

BENCH = committed_root() / "bench.json"


def write_rows(group: str, rows: list[dict]) -> None:
    """Replace the rows of ``group`` (e.g. "train", "gsc") in results/bench.json. Each row has
    at least ``what``, ``ours_s``, ``reference_s``, ``ratio`` and ``target``."""
    doc = json.loads(BENCH.read_text()) if BENCH.exists() else {"rows": []}
    hw = hardware()
    stamp = {"group": group, "commit": git_commit()[:12],
             "machine": f"{hw['machine']}, {hw['cpu_count']} CPUs, {hw.get('gpu', 'no GPU')}",
             "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    doc["rows"] = [r for r in doc["rows"] if r.get("group") != group] + \
        [dict(stamp, **r) for r in rows]
    atomic_write_json(BENCH, doc)
    for r in rows:
        print(f"{group:6s} {r['what']:55s} ours {r['ours_s'] * 1e3:8.2f} ms  reference "
              f"{r['reference_s'] * 1e3:8.2f} ms  ratio {r['ratio']:.2f} (target {r['target']})")
