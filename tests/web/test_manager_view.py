"""The manager view in the duty inbox (the commissioners' report's figures and charts, small counts suppressed,
for the manager role and their areas) and return visits counted through the real chat API, over real HTTP
with the real web app and real SQLite."""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import html
import re

import sqlalchemy as sa

from bot import analytics
from bot.escalation.store import EscalationStore
from bot.report import figures, shown
from bot.web.duty import grant_role
from bot.web.storage import WebStore
from tests.web.conftest import add_duty_user, open_chat, say
from tests.web.test_duty_http import login

DAY = dt.date(2026, 11, 2)
PERIOD = "area=gloucestershire&from=2026-11-01&to=2026-11-30"
ROW = re.compile(r"<tr><td>([^<]*)</td><td>([^<]*)</td></tr>")
CHART = re.compile(r'<img class="chart" src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)">')


def made_up_events(url: str) -> None:
    for _ in range(7):
        analytics.record("level_given", url=url, area="gloucestershire", speaker="parent", level=2, day=DAY)
    for _ in range(2):
        analytics.record("level_given", url=url, area="gloucestershire", speaker="professional", level=4, day=DAY)
    for _ in range(6):
        analytics.record("services_shown", url=url, area="gloucestershire", count=3, day=DAY)
    analytics.record("no_fitting_service", url=url, area="gloucestershire", outcode="GL5", day=DAY)
    for _ in range(5):
        analytics.record("return_visit", url=url, area="gloucestershire", day=DAY)
    analytics.record("level_given", url=url, area="north-lincolnshire", level=1, day=DAY)  # another area
    store = EscalationStore.open(url, channels=["inbox"], clock=lambda: dt.datetime(2026, 11, 2, 10, tzinfo=dt.timezone.utc))
    store.record_turn("s1", "he hits her", area="gloucestershire", categories=["physical_abuse"],
                      immediate_danger=False, escalate=True)
    store.dispose()


async def manager(settings, client_for, areas=("gloucestershire",)):
    password = add_duty_user(settings, "mo.manager", list(areas))
    store = WebStore.open(settings.database_url)
    grant_role(store, "mo.manager", "manager", by="test")
    store.dispose()
    client = await client_for(settings)
    await login(client, "mo.manager", password)
    return client


async def test_the_manager_view_needs_a_login_and_the_manager_role(make_settings, client_for):
    settings = make_settings()
    client = await client_for(settings)
    response = await client.get(f"/duty/report?{PERIOD}", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/duty/login"
    password = add_duty_user(settings, "jo.duty", ["gloucestershire"])
    await login(client, "jo.duty", password)
    assert 'href="/duty/report" class="hidden"' in await (await client.get("/duty")).text()
    response = await client.get(f"/duty/report?{PERIOD}")
    assert response.status == 403 and "manager" in await response.text()
    assert "role_refused" in [r["action"] for r in WebStore.open(settings.database_url).access_log("jo.duty")]


async def test_the_manager_view_shows_the_reports_figures_and_charts_with_small_counts_suppressed(make_settings, client_for):
    settings = make_settings()
    made_up_events(settings.database_url)
    client = await manager(settings, client_for)
    assert 'href="/duty/report" class=""' in await (await client.get("/duty")).text()
    response = await client.get(f"/duty/report?{PERIOD}")
    page = await response.text()
    assert response.status == 200
    shown_rows = [(html.unescape(label), html.unescape(count)) for label, count in ROW.findall(page)]
    # exactly the report's rows (bot.report.figures, as `earlyhelp report` writes them), in its order
    expected = [(label, shown(n, section)) for section, label, n in
                figures("gloucestershire", dt.date(2026, 11, 1), dt.date(2026, 11, 30), settings.database_url)]
    assert shown_rows == expected
    counts = dict(shown_rows)
    assert counts["level 2"] == "7" and counts["level 4"] == "<5" and counts["GL5"] == "<5"
    assert counts["physical abuse"] == "<5" and counts["signposted to services"] == "6"
    assert counts["return visit from this browser"] == "5"
    assert "level 1" not in counts  # North Lincolnshire's event is not Gloucestershire's
    assert not any(count in ("1", "2") for _, count in shown_rows)
    # the same charts, as images (the inbox's Content-Security-Policy refuses inline SVG styles)
    charts = CHART.findall(page)
    assert len(charts) >= 5 and all(alt.startswith("Bar chart: ") for _, alt in charts)
    svg = base64.b64decode(charts[0][0]).decode()
    assert svg.startswith("<svg") and "Level of need given" in svg and "&lt;5" in svg and "<script" not in svg
    assert 'value=\'gloucestershire\' selected' in page
    log = WebStore.open(settings.database_url).access_log("mo.manager")
    assert {"area": "gloucestershire", "from": "2026-11-01", "to": "2026-11-30"} in [r["detail"] for r in log]


async def test_other_areas_and_bad_periods_are_refused_with_a_message(make_settings, client_for):
    settings = make_settings()
    made_up_events(settings.database_url)
    client = await manager(settings, client_for)
    for query, words in (("area=north-lincolnshire&from=2026-11-01&to=2026-11-30", "your own areas"),
                         ("area=gloucestershire&from=yesterday&to=2026-11-30", "YYYY-MM-DD"),
                         ("area=gloucestershire&from=2026-11-30&to=2026-11-01", "must not be before"),
                         ("area=<b>x</b>&from=2026-11-01&to=2026-11-30", "your own areas")):
        response = await client.get(f"/duty/report?{query}")
        page = await response.text()
        assert response.status == 400 and words in page, query
        assert not ROW.search(page) and not CHART.search(page) and "<b>x</b>" not in page
    # with no query: the manager's first area, the last 30 days
    page = await (await client.get("/duty/report")).text()
    today = dt.datetime.now(dt.timezone.utc).date()
    assert f'value="{today.isoformat()}"' in page and f'value="{(today - dt.timedelta(days=29)).isoformat()}"' in page


async def visit_events(url: str, expect: int, timeout: float = 10) -> list[dict]:
    """The visit events written so far (they are written after the answer, in the background)."""
    engine = sa.create_engine(url)
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        while True:
            with engine.connect() as conn:
                analytics.metadata.create_all(engine)
                rows = [dict(r) for r in conn.execute(sa.select(analytics.events).where(
                    analytics.events.c.kind.in_(["first_visit", "return_visit"])).order_by(analytics.events.c.id)).mappings()]
            if len(rows) >= expect or asyncio.get_running_loop().time() > deadline:
                return rows
            await asyncio.sleep(0.1)
    finally:
        engine.dispose()


async def test_return_visits_are_counted_once_per_chat_when_its_area_is_known(make_settings, client_for):
    settings = make_settings()
    first = await client_for(settings)
    csrf = await open_chat(first)
    assert (await say(first, csrf, "hello", returning=False)).status == 200
    assert await visit_events(settings.database_url, 1, timeout=0.5) == []  # no area yet: nothing counted
    assert (await say(first, csrf, "we live in Stroud", returning=False)).status == 200
    assert (await say(first, csrf, "my son is 7", returning=False)).status == 200  # still one per chat
    back = await client_for(settings)
    csrf_back = await open_chat(back)
    assert (await say(back, csrf_back, "we are in Aylesbury", returning=True)).status == 200
    silent = await client_for(settings)  # a browser that keeps nothing sends no flag: not counted
    csrf_silent = await open_chat(silent)
    assert (await say(silent, csrf_silent, "we live in Stroud")).status == 200
    response = await say(silent, csrf_silent, "hello", returning="yes")
    assert response.status == 400 and "true or false" in (await response.json())["error"]
    rows = await visit_events(settings.database_url, 2)
    await asyncio.sleep(0.3)
    rows = await visit_events(settings.database_url, 3, timeout=0.2)
    assert [(r["kind"], r["area"]) for r in rows] == [("first_visit", "gloucestershire"), ("return_visit", "buckinghamshire")]
    # the event is the day, the kind and the area: nothing else about the chat
    assert all(r["speaker"] is None and r["level"] is None and r["outcode"] is None and r["count"] is None for r in rows)
    doc = figures("buckinghamshire", rows[1]["day"], rows[1]["day"], settings.database_url)
    assert ("Visits", "return visit from this browser", 1) in doc


async def test_the_figures_download_as_the_reports_csv(make_settings, client_for, tmp_path):
    import csv
    import io

    from bot.report import write

    settings = make_settings()
    made_up_events(settings.database_url)
    client = await manager(settings, client_for)
    page = await (await client.get(f"/duty/report?{PERIOD}")).text()
    link = re.search(r"href='(/duty/report\.csv\?[^']+)'", page).group(1)
    response = await client.get(html.unescape(link))
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(await response.text())))
    write("gloucestershire", dt.date(2026, 11, 1), dt.date(2026, 11, 30), tmp_path, settings.database_url)
    assert rows == list(csv.reader(open(tmp_path / "report.csv")))  # the CLI's CSV, byte for byte in content
    assert ["Level of need given", "level 4", "<5"] in rows
    response = await client.get("/duty/report.csv?area=north-lincolnshire&from=2026-11-01&to=2026-11-30")
    assert response.status == 400
