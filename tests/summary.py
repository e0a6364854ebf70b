#!/usr/bin/env python3
"""The count of tests run and skipped, and why, from ctest's JUnit file.

usage: summary.py JUNIT.xml [LABEL]
Prints the reason of every skipped test (the line of its output that says why),
the parts that tests which ran left out (their lines that mention a skip), and,
last, one line: "LABEL: N tests run (P passed, F failed), S skipped (names)".
"""
import re
import sys
import xml.etree.ElementTree as ET


def reason(out):
    lines = [l.strip() for l in (out or "").splitlines() if l.strip()]
    for l in reversed(lines):
        if re.search(r"skip|missing|not built|no .* device|not used", l, re.I):
            return l
    return lines[-1] if lines else "(no output)"


def main():
    path = sys.argv[1]
    label = sys.argv[2] if len(sys.argv) > 2 else "ctest"
    root = ET.parse(path).getroot()
    ran, passed, failed, skipped, partial = 0, 0, [], [], []
    for tc in root.iter("testcase"):
        name = tc.get("name")
        out = "".join(e.text or "" for e in tc.iter("system-out"))
        if tc.get("status") == "notrun" or tc.find("skipped") is not None:
            skipped.append((name, reason(out)))
            continue
        ran += 1
        if tc.find("failure") is not None or tc.get("status") == "fail":
            failed.append(name)
        else:
            passed += 1
        for l in out.splitlines():
            if re.search(r"\bskip", l, re.I):
                partial.append((name, l.strip()))
    for name, why in skipped:
        print(f"  skipped {name}: {why}")
    for name, why in partial:
        print(f"  part of {name} left out: {why}")
    line = f"{label}: {ran} tests run ({passed} passed, {len(failed)} failed), {len(skipped)} skipped"
    if skipped:
        line += " (" + ", ".join(n for n, _ in skipped) + ": see above)"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
