#!/usr/bin/env python3
"""Checks examples/prometheus-alerts.yml against the fields a real server returns.

    check_alerts.py RULES_FILE FIELD...

FIELD...: the trackinfo_* names examples/trackinfo-exporter.lua returned on a running server
(tests/examples.rs passes them). Fails (exit 1) when the YAML does not parse, a rule lacks
alert, expr, for, labels.severity or annotations.summary, an expr uses a metric other than
redis_script_values, or names a key that is not one of FIELD.
"""

import re
import sys

import yaml

SEVERITIES = {"info", "warning", "critical"}


def problems(doc, fields):
    out = []
    rules = [r for g in doc.get("groups", []) for r in g.get("rules", [])]
    if not rules:
        out.append("no rules")
    for r in rules:
        name = r.get("alert", "<no alert name>")
        for need in ("alert", "expr", "for"):
            if not r.get(need):
                out.append(f"{name}: no {need}")
        if r.get("labels", {}).get("severity") not in SEVERITIES:
            out.append(f"{name}: labels.severity not one of {sorted(SEVERITIES)}")
        if not r.get("annotations", {}).get("summary"):
            out.append(f"{name}: no annotations.summary")
        expr = str(r.get("expr", ""))
        metrics = set(re.findall(r"\bredis_\w+", expr))
        if metrics != {"redis_script_values"}:
            out.append(f"{name}: uses {sorted(metrics)}, expected only redis_script_values")
        keys = re.findall(r'key\s*=\s*"([^"]*)"', expr)
        if not keys:
            out.append(f"{name}: names no key")
        for k in keys:
            if k not in fields:
                out.append(f"{name}: key {k!r} is no field the server returns")
    return out


def main():
    path, fields = sys.argv[1], set(sys.argv[2:])
    with open(path) as f:
        doc = yaml.safe_load(f)
    found = problems(doc, fields)
    for p in found:
        print(f"{path}: {p}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
