"""Commissioners' report: what the assistant did for an area over a period, without personal data.

Built only from ``analytics_events`` (no text, no ids) and the escalations' categories and times. Any
count below 5 is shown as "<5", in the table, the CSV and the charts, so a rare case in a small place
cannot be singled out. ``earlyhelp report --area A --from D --to D --out FOLDER`` writes report.html (with
charts drawn by matplotlib, embedded as SVG) and report.csv.
"""
from __future__ import annotations

import csv
import datetime as dt
import html
import io
from pathlib import Path

import sqlalchemy as sa

from bot.analytics import events, metadata
from bot.db import database_url, make_engine

SMALL = 5  # counts below this are suppressed


def shown(count: int) -> str:
    return "<5" if 0 < count < SMALL else str(count)


def figures(area: str, start: dt.date, end: dt.date, url: str | None = None) -> list[tuple[str, str, int]]:
    """(section, label, count) rows for the period, inclusive; counts are exact here, suppressed on output."""
    from bot.escalation.schema import escalations

    engine = make_engine(url or database_url("earlyhelp"))
    metadata.create_all(engine)
    rows: list[tuple[str, str, int]] = []
    try:
        with engine.connect() as conn:
            where = sa.and_(events.c.area == area, events.c.day >= start, events.c.day <= end)

            def count_by(kind: str, column, section: str, label) -> None:
                query = (sa.select(column, sa.func.count()).where(where, events.c.kind == kind)
                         .group_by(column).order_by(column))
                for value, n in conn.execute(query):
                    rows.append((section, label(value), n))

            count_by("level_given", events.c.level, "Level of need given", lambda v: f"level {v}")
            count_by("level_given", events.c.speaker, "Who asked", lambda v: (v or "not said").replace("_", " "))
            for kind, label in (("services_shown", "signposted to services"), ("talk_to_person", "given a number to talk to someone"),
                                ("no_fitting_service", "no fitting service found")):
                n = conn.execute(sa.select(sa.func.count()).where(where, events.c.kind == kind)).scalar_one()
                rows.append(("Contacts", label, n))
            count_by("no_fitting_service", events.c.outcode, "Unmet need by postcode district", lambda v: v or "unknown")
            if sa.inspect(engine).has_table(escalations.name):
                start_at = dt.datetime.combine(start, dt.time(), dt.timezone.utc)
                end_at = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
                found = conn.execute(sa.select(escalations.c.categories, escalations.c.created_at, escalations.c.acknowledged_at)
                                     .where(escalations.c.area == area, escalations.c.created_at >= start_at,
                                            escalations.c.created_at < end_at)).all()
                by_category: dict[str, int] = {}
                waits = []
                for categories, created, acked in found:
                    for category in categories or ["other"]:
                        by_category[category] = by_category.get(category, 0) + 1
                    if acked is not None:
                        waits.append((acked - created).total_seconds() / 60)
                for category in sorted(by_category):
                    rows.append(("Escalations by category", category.replace("_", " "), by_category[category]))
                rows.append(("Escalations", "total", len(found)))
                rows.append(("Escalations", "acknowledged", len(waits)))
                if len(waits) >= SMALL:  # a median of fewer would describe individual cases
                    waits.sort()
                    rows.append(("Escalations", "median minutes to acknowledge", round(waits[len(waits) // 2])))
    finally:
        engine.dispose()
    return rows


def _chart(section: str, data: list[tuple[str, int]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    labels = [label for label, _ in data]
    values = [0 if 0 < n < SMALL else n for _, n in data]  # suppressed bars are drawn empty and labelled <5
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(data) + 1))
    bars = ax.barh(labels, values, color="#1d70b8")
    for bar, (_, n) in zip(bars, data):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, " " + shown(n), va="center")
    ax.set_title(section)
    ax.invert_yaxis()
    fig.tight_layout()
    out = io.StringIO()
    fig.savefig(out, format="svg")
    plt.close(fig)
    svg = out.getvalue()
    return svg[svg.index("<svg"):]


def write(area: str, start: dt.date, end: dt.date, out: Path, url: str | None = None) -> dict:
    from bot.areas import get_area

    name = get_area(area).name
    rows = figures(area, start, end, url)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "report.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["section", "measure", "count"])
        for section, label, n in rows:
            writer.writerow([section, label, shown(n)])
    sections: dict[str, list[tuple[str, int]]] = {}
    for section, label, n in rows:
        sections.setdefault(section, []).append((label, n))
    parts = [f"<!doctype html><html lang='en'><meta charset='utf-8'><title>Early Help assistant: {html.escape(name)}</title>",
             f"<h1>Early Help assistant: {html.escape(name)}</h1>",
             f"<p>{start.isoformat()} to {end.isoformat()}. Counts below 5 are shown as &lt;5. "
             "Built from events that hold no personal data.</p>"]
    for section, data in sections.items():
        parts.append(f"<h2>{html.escape(section)}</h2><table><tr><th>measure</th><th>count</th></tr>")
        parts += [f"<tr><td>{html.escape(label)}</td><td>{shown(n)}</td></tr>" for label, n in data]
        parts.append("</table>")
        if any(n for _, n in data):
            parts.append(_chart(section, data))
    (out / "report.html").write_text("\n".join(parts) + "</html>\n")
    return {"area": area, "from": start.isoformat(), "to": end.isoformat(), "html": str(out / "report.html"),
            "csv": str(out / "report.csv"), "rows": [{"section": s, "measure": m, "count": shown(n)} for s, m, n in rows]}
