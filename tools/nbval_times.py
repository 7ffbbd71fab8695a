"""Seconds nbval spent on each notebook, from its JUnit XML (``make test`` prints them).

    python tools/nbval_times.py _build/nbval.xml
"""
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict


def main(path: str) -> int:
    secs = defaultdict(float)
    for case in ET.parse(path).getroot().iter("testcase"):
        secs[case.get("file") or case.get("classname", "?")] += float(case.get("time", 0))
    for name, s in secs.items():
        print(f"nbval from scratch: {name}: {s:.0f} s")
    print(f"nbval from scratch: all: {sum(secs.values()):.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
