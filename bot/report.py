"""Commissioners' report: what the assistant did for an area over a period, without personal data.

Built only from ``analytics_events`` (no text, no ids) and the escalations' categories and times. Any
count below 5 is shown as "<5", in the table, the CSV and the charts, so a rare case in a small place
cannot be singled out. ``earlyhelp report --area A --from D --to D --out FOLDER`` writes report.html (with
charts drawn by matplotlib, embedded as SVG) and report.csv. The duty inbox's manager view
(``/duty/report``) shows the same figures and charts, built by the same functions here (``body_html``).

Return visits come from the widget: it keeps one flag in the browser ("this browser has used the
assistant before", no id) and says yes or no with each message; the web app writes one ``first_visit`` or
``return_visit`` event when the chat's area becomes known (``bot.web.chat``).
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
MINUTES = "Median minutes to acknowledge"  # a section of medians, not counts: shown as they are


def shown(count: int, section: str | None = None) -> str:
    if section == MINUTES:
        return str(count)
    return "<5" if 0 < count < SMALL else str(count)


def _median(values: list[float]) -> int:
    ordered = sorted(values)
    middle = len(ordered) // 2
    value = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return round(value)


def figures(area: str, start: dt.date, end: dt.date, url: str | None = None,
            engine=None) -> list[tuple[str, str, int]]:
    """(section, label, count) rows for the period, inclusive; counts are exact here, suppressed on output."""
    from bot.escalation.schema import escalations

    own = engine is None
    engine = engine or make_engine(url or database_url("earlyhelp"))
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
            for kind, label in (("first_visit", "first visit from this browser"),
                                ("return_visit", "return visit from this browser")):
                n = conn.execute(sa.select(sa.func.count()).where(where, events.c.kind == kind)).scalar_one()
                rows.append(("Visits", label, n))
            if sa.inspect(engine).has_table(escalations.name):
                start_at = dt.datetime.combine(start, dt.time(), dt.timezone.utc)
                end_at = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
                found = conn.execute(sa.select(escalations.c.categories, escalations.c.created_at, escalations.c.acknowledged_at)
                                     .where(escalations.c.area == area, escalations.c.created_at >= start_at,
                                            escalations.c.created_at < end_at)).all()
                by_category: dict[str, int] = {}
                waits: list[float] = []
                waits_by_category: dict[str, list[float]] = {}
                for categories, created, acked in found:
                    wait = None if acked is None else (acked - created).total_seconds() / 60
                    if wait is not None:
                        waits.append(wait)
                    for category in categories or ["other"]:
                        by_category[category] = by_category.get(category, 0) + 1
                        if wait is not None:
                            waits_by_category.setdefault(category, []).append(wait)
                for category in sorted(by_category):
                    rows.append(("Escalations by category", category.replace("_", " "), by_category[category]))
                rows.append(("Escalations", "total", len(found)))
                rows.append(("Escalations", "acknowledged", len(waits)))
                # a median of fewer than 5 waits would describe individual cases: not shown at all
                if len(waits) >= SMALL:
                    rows.append((MINUTES, "all categories", _median(waits)))
                for category in sorted(waits_by_category):
                    if len(waits_by_category[category]) >= SMALL:
                        rows.append((MINUTES, category.replace("_", " "), _median(waits_by_category[category])))
    finally:
        if own:
            engine.dispose()
    return rows


def _chart(section: str, data: list[tuple[str, int]]) -> str:
    """A horizontal bar chart as SVG text; suppressed counts are drawn as empty bars labelled <5. Uses
    matplotlib's object API (no pyplot), so the web app can draw charts from several threads."""
    import matplotlib
    from matplotlib.figure import Figure

    labels = [label for label, _ in data]
    values = [n if section == MINUTES or not 0 < n < SMALL else 0 for _, n in data]  # suppressed: empty bar, "<5"
    fig = Figure(figsize=(6, 0.4 * len(data) + 1))
    ax = fig.subplots()
    bars = ax.barh(labels, values, color="#1d70b8")
    for bar, (_, n) in zip(bars, data):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, " " + shown(n, section), va="center")
    ax.set_title(section)
    ax.invert_yaxis()
    fig.tight_layout()
    out = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "earlyhelp"}):  # the same figures give the same file
        fig.savefig(out, format="svg", metadata={"Date": None})
    svg = out.getvalue()
    return svg[svg.index("<svg"):]


def chart_img(section: str, data: list[tuple[str, int]]) -> str:
    """The same chart as an ``<img>`` with the SVG in a data: address, for pages whose Content-Security-Policy
    refuses inline styles (the duty inbox); its alt text points to the table beside it."""
    import base64

    encoded = base64.b64encode(_chart(section, data).encode("utf-8")).decode("ascii")
    alt = f"Bar chart: {section}. The same figures are in the table above."
    return f'<img class="chart" src="data:image/svg+xml;base64,{encoded}" alt="{html.escape(alt, quote=True)}">'


def grouped(rows: list[tuple[str, str, int]]) -> dict[str, list[tuple[str, int]]]:
    sections: dict[str, list[tuple[str, int]]] = {}
    for section, label, n in rows:
        sections.setdefault(section, []).append((label, n))
    return sections


def body_html(rows: list[tuple[str, str, int]], *, inline_svg: bool = True, level: int = 2) -> str:
    """Each section as a table of suppressed counts and, when it has any, its chart (inline SVG for the
    report file, an ``<img>`` for the duty inbox). Every text is escaped."""
    parts = []
    for section, data in grouped(rows).items():
        unit = "minutes" if section == MINUTES else "count"
        parts.append(f"<h{level}>{html.escape(section)}</h{level}><table><tr><th scope='col'>measure</th>"
                     f"<th scope='col'>{unit}</th></tr>")
        parts += [f"<tr><td>{html.escape(label)}</td><td>{html.escape(shown(n, section))}</td></tr>" for label, n in data]
        parts.append("</table>")
        if any(n for _, n in data):
            parts.append(_chart(section, data) if inline_svg else chart_img(section, data))
    return "\n".join(parts)


def write_csv(rows, handle) -> None:
    """The figures as CSV (section, measure, count), counts below 5 shown as <5: the report's report.csv
    and the manager view's download are this one table."""
    writer = csv.writer(handle)
    writer.writerow(["section", "measure", "count"])
    for section, label, n in rows:
        writer.writerow([section, label, shown(n, section)])


def write(area: str, start: dt.date, end: dt.date, out: Path, url: str | None = None) -> dict:
    from bot.areas import get_area

    name = get_area(area).name
    rows = figures(area, start, end, url)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "report.csv", "w", newline="") as handle:
        write_csv(rows, handle)
    parts = [f"<!doctype html><html lang='en'><meta charset='utf-8'><title>Early Help assistant: {html.escape(name)}</title>",
             f"<h1>Early Help assistant: {html.escape(name)}</h1>",
             f"<p>{start.isoformat()} to {end.isoformat()}. Counts below 5 are shown as &lt;5. "
             "Built from events that hold no personal data.</p>",
             body_html(rows)]
    (out / "report.html").write_text("\n".join(parts) + "</html>\n")
    return {"area": area, "from": start.isoformat(), "to": end.isoformat(), "html": str(out / "report.html"),
            "csv": str(out / "report.csv"), "rows": [{"section": s, "measure": m, "count": shown(n, s)} for s, m, n in rows]}
