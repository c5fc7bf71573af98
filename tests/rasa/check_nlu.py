"""Fail `make test` if intent recognition on the held-out NLU set drops below its floor.

`rasa test nlu` reports but never fails; this reads its report. The held-out set is written apart from
the training data (tests/rasa/nlu_holdout.yml), so the figure says how well unseen phrasing is read.
"""
from __future__ import annotations

import json
import sys

FLOOR = {"accuracy": 0.85, "weighted avg f1": 0.85}


def main(path: str) -> int:
    report = json.load(open(path))
    accuracy = report["accuracy"]
    weighted = report["weighted avg"]["f1-score"]
    worst = sorted(
        (v["f1-score"], k) for k, v in report.items() if isinstance(v, dict) and "support" in v and k not in ("macro avg", "weighted avg")
    )[:5]
    print(f"NLU held-out: accuracy {accuracy:.3f}, weighted F1 {weighted:.3f}; weakest intents: "
          + ", ".join(f"{k} {f:.2f}" for f, k in worst))
    if accuracy < FLOOR["accuracy"] or weighted < FLOOR["weighted avg f1"]:
        print(f"below the floor {FLOOR}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
