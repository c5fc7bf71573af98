"""Render the sample commissioners' report from made-up events (no real family, council or conversation).

    .venv/bin/python docs/sample-report/make_sample.py [--screenshots]

Writes report.html and report.csv next to this file, through ``bot.report.write`` (what ``earlyhelp report``
runs), from a throw-away SQLite database filled with random but seeded events for Gloucestershire in
October 2026, so the same figures come out every time. With ``--screenshots`` it also serves the real web
app on that database and saves, with headless Chromium (Debian's, through Playwright), the duty inbox's
manager view (manager-view.png) and a data protection officer's erasure question (dpo-erase-confirm.png).
"""
from __future__ import annotations

import datetime as dt
import os
import random
import secrets
import sys
import tempfile
from pathlib import Path

from bot import analytics
from bot.escalation.store import EscalationStore
from bot.report import write

HERE = Path(__file__).resolve().parent
AREA = "gloucestershire"
START, END = dt.date(2026, 10, 1), dt.date(2026, 10, 31)
DISTRICTS = ["GL1", "GL5", "GL20", "GL50", "GL7"]
CATEGORIES = ["domestic_abuse", "physical_abuse", "neglect", "self_harm"]


def fill(url: str, rng: random.Random) -> None:
    days = [START + dt.timedelta(days=i) for i in range((END - START).days + 1)]
    for _ in range(400):
        day = rng.choice(days)
        speaker = rng.choices(["parent", "young_person", "professional"], [5, 3, 2])[0]
        level = rng.choices([1, 2, 3, 4], [30, 44, 18, 8])[0]
        district = rng.choice(DISTRICTS)
        analytics.record("level_given", url=url, area=AREA, speaker=speaker, level=level, outcode=district, day=day)
        if rng.random() < 0.9:
            analytics.record("services_shown", url=url, area=AREA, speaker=speaker, count=rng.randint(1, 5), day=day)
        else:
            analytics.record("no_fitting_service", url=url, area=AREA, speaker=speaker,
                             outcode=rng.choices(DISTRICTS, [6, 3, 8, 4, 1])[0], day=day)
        if rng.random() < 0.3:
            analytics.record("talk_to_person", url=url, area=AREA, speaker=speaker, day=day)
        analytics.record("return_visit" if rng.random() < 0.27 else "first_visit", url=url, area=AREA, day=day)
    clock = [dt.datetime.combine(START, dt.time(9), dt.timezone.utc)]
    store = EscalationStore.open(url, channels=["inbox"], clock=lambda: clock[0])
    for i in range(23):
        created = dt.datetime.combine(rng.choice(days), dt.time(rng.randint(8, 20), rng.randint(0, 59)), dt.timezone.utc)
        clock[0] = created
        category = rng.choices(CATEGORIES, [9, 7, 2, 5])[0]
        store.record_turn(f"sample-{i}", "made-up text before", area=AREA, categories=[], immediate_danger=False,
                          escalate=False)
        escalation = store.record_turn(f"sample-{i}", "made-up text", area=AREA, categories=[category],
                                       immediate_danger=False, escalate=True)
        clock[0] = created + dt.timedelta(minutes=rng.randint(4, 70))
        store.acknowledge(escalation["id"], "sample duty worker")
    store.dispose()


def screenshots(folder: Path, url: str) -> None:
    from playwright.sync_api import sync_playwright

    from bot.web import Settings, create_app
    from bot.web.duty import grant_role
    from bot.web.screenshots import CHROMIUM_ARGS, _Background, _free_port
    from bot.web.storage import WebStore

    settings = Settings(port=_free_port(), rasa_url=f"http://127.0.0.1:{_free_port()}",
                        action_url=f"http://127.0.0.1:{_free_port()}", secret_key=secrets.token_urlsafe(48),
                        database_url=url, tracker_url=f"sqlite:///{folder / 'tracker.db'}", run_delivery_worker=False)
    password = secrets.token_urlsafe(16)
    store = WebStore.open(url)
    store.add_user("sam.lead", password, [AREA])
    grant_role(store, "sam.lead", "manager", by="sample")
    grant_role(store, "sam.lead", "dpo", by="sample")
    store.dispose()
    engine_store = EscalationStore.open(url, channels=["inbox"])
    reference = engine_store.list()[0]["id"]
    engine_store.dispose()
    background = _Background()
    app = create_app(settings)
    background.serve(app, settings.port)
    base = f"http://127.0.0.1:{settings.port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=os.environ.get("EARLYHELP_CHROMIUM", "/usr/bin/chromium"),
                                        headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(base + "/duty/login")
            page.get_by_label("Username").fill("sam.lead")
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(base + "/duty")
            page.goto(f"{base}/duty/report?area={AREA}&from={START.isoformat()}&to={END.isoformat()}")
            page.wait_for_function("Array.from(document.querySelectorAll('img.chart')).every(i => i.complete)")
            page.screenshot(path=HERE / "manager-view.png", full_page=True)
            page.goto(base + "/duty/privacy")
            page.get_by_label("Conversation id or escalation reference").fill(reference)
            page.get_by_role("button", name="Erase this conversation…").click()
            page.get_by_role("heading", name="Erase this conversation?").wait_for()
            page.screenshot(path=HERE / "dpo-erase-confirm.png", full_page=True)
            browser.close()
    finally:
        from bot.web.keys import WARM

        app[WARM].wait(300)  # the app's start-up work (loading the safeguarding screen) ends before it stops
        background.stop()
    print(f"wrote {HERE / 'manager-view.png'} and {HERE / 'dpo-erase-confirm.png'}")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        os.environ["EARLYHELP_HOME"] = folder  # nothing of the web app's start-up lands in the real home
        url = f"sqlite:///{Path(folder) / 'sample.db'}"
        fill(url, random.Random(2026))
        write(AREA, START, END, HERE, url)
        print(f"wrote {HERE / 'report.html'} and {HERE / 'report.csv'}")
        if "--screenshots" in sys.argv[1:]:
            screenshots(Path(folder), url)


if __name__ == "__main__":
    main()
