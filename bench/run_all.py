"""`make bench`: run every bench/ script and print one table (figure, value, target, pass/fail).

Each bench module exposes `run() -> list[dict(figure, value, target, passed)]`.
`--record` also writes the table to the top of bench/RESULTS.md with the date and machine (the
notes and sections below it are kept).
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
BENCHES = ("quick_train", "features", "quick_app", "quick_large", "finetune_epoch", "predict", "grid_poll",
           "networks", "scale", "evaluate")


def machine() -> str:
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except Exception:  # torch missing or broken: still describe the host
        gpu = "torch unavailable"
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, {gpu}, Python {platform.python_version()}"


def collect(names) -> list[dict]:
    rows = []
    for name in names:
        try:
            module = importlib.import_module(f"bench.{name}")
            for row in module.run():
                rows.append({"bench": name, **row})
        except Exception as err:  # one broken bench must not hide the others' figures
            traceback.print_exc()
            rows.append({"bench": name, "figure": "(bench failed)", "value": str(err)[:60], "target": "", "passed": False})
    return rows


def fmt(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def table(rows) -> str:
    lines = ["| bench | figure | value | target | result |", "|---|---|---|---|---|"]
    for r in rows:
        verdict = "pass" if r.get("passed") else ("fail" if r.get("passed") is False else "info")
        lines.append(f"| {r['bench']} | {r['figure']} | {fmt(r['value'])} | {r.get('target', '')} | {verdict} |")
    return "\n".join(lines)


def record(text: str) -> None:
    """Replace the table at the top of RESULTS.md; notes and later sections written by hand stay."""
    path = HERE / "RESULTS.md"
    old = path.read_text() if path.exists() else ""
    kept = [old.find(marker) for marker in ("\nNotes", "\n## ") if old.find(marker) >= 0]
    rest = old[min(kept):] if kept else ""
    stamp = datetime.date.today().isoformat()
    path.write_text(f"# Benchmark results\n\n{stamp} — {machine()}\n\n{text}\n{rest}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=list(BENCHES))
    parser.add_argument("--record", action="store_true", help="write bench/RESULTS.md")
    args = parser.parse_args()
    rows = collect(args.only)
    text = table(rows)
    print(text)
    if args.record:
        record(text)
    return 0 if all(r.get("passed") is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
