"""One-off migration (2026-12-04): code hashes from raw file bytes to syntax trees without
docstrings (``reprobook.registry.code_text``), so that a docstring or comment edit stops
staling evidence.

A committed record is migrated only if its stored hash equals the raw-bytes hash of the code
as it is now, that is, only if it is current: the code that computed it is the code on disk,
and its new hash is that code's tree hash. Its old hash stays in ``provenance.code_hash_raw``.
A stale record is left as it is. Run it before any docstring edit.

    python tools/rehash_records.py            # report what would change
    python tools/rehash_records.py --write    # rewrite the records in place
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from reprobook import registry
from reprobook.provenance import SHARED_CODE, chapter_of, experiment_code_hash
from reprobook.results import atomic_write_json, read_record
from reprobook.paths import committed_root

SRC = Path(registry.__file__).resolve().parent


def raw_hash(experiment: str) -> str:
    """The hash before the migration: file bytes, per registered experiment or per chapter."""
    exp = registry.find(experiment)
    h = hashlib.sha256()
    if exp is not None:
        for rel in (*sorted(exp.modules), *registry.SHARED_COMPUTE):
            f = SRC / rel
            h.update(rel.encode() + b"\0" + (f.read_bytes() if f.exists() else b""))
        return h.hexdigest()[:16]
    ch = chapter_of(experiment)
    files = sorted(f for f in (SRC / ch).rglob("*.py") if not f.name.startswith("exp_")) \
        if (SRC / ch).is_dir() else [SRC / f"{ch}.py"]
    for f in [*files, *(SRC / name for name in SHARED_CODE)]:
        if f.exists():
            h.update(str(f.relative_to(SRC)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def main(argv=None) -> int:
    write = "--write" in (argv or sys.argv[1:])
    moved = kept = 0
    for path in sorted(committed_root().glob("*/*/*.json")):
        rec = read_record(path)
        prov = rec["provenance"]
        if prov.get("code_hash_raw") or prov.get("code_hash") != raw_hash(rec["experiment"]):
            kept += 1
            continue
        prov["code_hash_raw"], prov["code_hash"] = prov["code_hash"], experiment_code_hash(rec["experiment"])
        moved += 1
        if write:
            atomic_write_json(path, rec)
    print(f"{moved} current records {'rehashed' if write else 'to rehash'}; {kept} left as they are")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
