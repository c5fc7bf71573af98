"""Search quality over a query set: recall@5, MRR and nDCG@10 for lexical, dense and hybrid ranking.

A query set is JSON Lines: ``{"query", "area"?, "age"?, "expected": [service ids], "must_not"?: [service
ids]}``. Every expected id counts as relevant (binary relevance); ``must_not`` names services the family
is not eligible for (e.g. a line the child contacts themselves, for a toddler), counted when one appears
in the top 5. The three modes share the filters, candidates and embeddings, so
the comparison is of ranking alone.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

from directory.core import Directory

MODES = ("lexical", "dense", "hybrid")


def load_queries(path: Path) -> list[dict[str, Any]]:
    queries = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            item = json.loads(line)
            if not item.get("expected"):
                raise ValueError(f"{path}:{line_no}: 'expected' must list at least one service id")
            queries.append(item)
    return queries


def metrics(ranked: list[str], expected: Iterable[str]) -> dict[str, float]:
    relevant = set(expected)
    top5 = ranked[:5]
    recall5 = len(relevant & set(top5)) / len(relevant)
    rr = next((1.0 / (i + 1) for i, sid in enumerate(ranked) if sid in relevant), 0.0)
    dcg = sum(1.0 / math.log2(i + 2) for i, sid in enumerate(ranked[:10]) if sid in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    return {"recall@5": recall5, "mrr": rr, "ndcg@10": dcg / ideal}


def evaluate(directory: Directory, queries: list[dict[str, Any]], modes: Iterable[str] = MODES) -> dict[str, Any]:
    """Mean metrics per mode, and the queries each mode missed in its top 5."""
    from bot.embeddings import embed

    catalog = directory.catalog()
    vectors = embed([q["query"] for q in queries])
    report: dict[str, Any] = {}
    for mode in modes:
        totals = {"recall@5": 0.0, "mrr": 0.0, "ndcg@10": 0.0}
        misses, ineligible = [], []
        for q, vector in zip(queries, vectors):
            plan = directory._plan(area=q.get("area"), age=q.get("age"), k=10)
            ranked = [catalog.ids[row] for row, *_ in directory.rank(catalog, q["query"], vector, plan, mode=mode)[:10]]
            m = metrics(ranked, q["expected"])
            for key in totals:
                totals[key] += m[key]
            if m["recall@5"] < 1.0:
                misses.append({"query": q["query"], "expected": q["expected"], "got": ranked[:5]})
            shown = [sid for sid in ranked[:5] if sid in set(q.get("must_not", ()))]
            if shown:
                ineligible.append({"query": q["query"], "age": q.get("age"), "shown": shown})
        report[mode] = {key: value / len(queries) for key, value in totals.items()}
        report[mode]["misses"] = misses
        report[mode]["ineligible"] = ineligible
    return report
