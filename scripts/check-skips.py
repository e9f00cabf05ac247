#!/usr/bin/env python3
"""Reads the output of `swift test` and says how many tests passed, failed and were skipped.

Fails (exit 1) when a test was skipped that Tests/optional-tests.txt does not list, or when the
output holds no test at all (a filter that matched nothing). A test that cannot run its peer must
fail with the reason; skipping is kept for the few tests the list names, each with why.

usage: check-skips.py TEST-OUTPUT OPTIONAL-LIST
"""
import os
import re
import sys

CASE = re.compile(r"^Test Case '([^']+)' (passed|failed|skipped) \(")
# swift-corelibs-xctest announces a skip as "FILE:LINE: Class.test : Test skipped[: why]" and then
# ends the case as "passed" (or "failed" when something else failed too).
SKIP = re.compile(r"^\S*:\d+: (\S+) : Test skipped")


def read_optional(path):
    """`NAME WHEN REASON` per line, `#` starting a comment. NAME is `Class.test`, or `Class` for
    every test of the class. WHEN is `always`, or `nonroot`: the skip is allowed only when the suite
    ran without root (CI runs as root, so there it must run)."""
    optional = {}
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split(None, 2)
            if len(parts) < 3 or parts[1] not in ("always", "nonroot"):
                sys.exit(f"{path}:{number}: expected 'NAME always|nonroot REASON', found '{line}'")
            name, when, reason = parts
            if when == "nonroot" and os.geteuid() == 0:
                continue
            optional[name] = reason
    return optional


def listed(name, optional):
    """The reason `name` may skip, or None."""
    if name in optional:
        return optional[name]
    return optional.get(name.split(".", 1)[0])


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    log, listing = sys.argv[1], sys.argv[2]
    optional = read_optional(listing)
    results, announced = {}, set()
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            m = CASE.match(line)
            if m:
                # XCTest names a case "Class.test" on Linux and "-[Class test]" elsewhere.
                name = m.group(1).replace("-[", "").replace("]", "").replace(" ", ".")
                results[name] = m.group(2)
            m = SKIP.match(line)
            if m:
                announced.add(m.group(1))
    for name in announced:
        if results.get(name) == "passed":
            results[name] = "skipped"
    if not results:
        print(f"check-skips: no test results in {log}", file=sys.stderr)
        return 1
    counts = {k: sum(1 for v in results.values() if v == k) for k in ("passed", "failed", "skipped")}
    skipped = sorted(n for n, v in results.items() if v == "skipped")
    allowed = [n for n in skipped if listed(n, optional)]
    refused = [n for n in skipped if not listed(n, optional)]
    print(f"tests: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped "
          f"({len(allowed)} on the optional list {listing})")
    for n in allowed:
        print(f"  skipped (optional): {n}: {listed(n, optional)}")
    for n in refused:
        print(f"  skipped, NOT optional: {n}", file=sys.stderr)
    if refused:
        print(f"check-skips: {len(refused)} test(s) skipped that {listing} does not list: "
              "make them run (install their peer) or fail with the reason", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
