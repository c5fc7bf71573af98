"""``python -m bot.web.screenshots [--out docs/screenshots] [--rasa-url URL [--action-url URL]]``: pictures of the web app.

Saves PNGs of the chat widget (desktop and phone width), a service card, and the duty inbox with an
escalation in it, using headless Chromium (Debian's /usr/bin/chromium through Playwright; nothing is
downloaded). It starts the real web app on a free loopback port with a throw-away home. With
``--rasa-url`` the conversation is the real assistant's; without it, a small loopback stand-in for Rasa
answers with fixed example replies so the pictures can be made without a trained model.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import sys
import tempfile
import threading
from pathlib import Path

from aiohttp import web

from bot.replies import service_cards

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]

def _say(text: str, *buttons: tuple[str, str]) -> dict:
    reply: dict = {"text": text}
    if buttons:
        reply["buttons"] = [{"title": t, "payload": p} for t, p in buttons]
    return reply


EXAMPLE_REPLIES = {
    "/greet": [_say("Hello, I'm the Early Help assistant. If a child is in immediate danger, call 999 now.\nWho are you?",
                    ("A parent or carer", "/identify_parent"), ("A young person", "/identify_young_person"),
                    ("A professional", "/identify_professional"))],
    "/identify_parent": [_say("Which area do you live in? A town or the first part of your postcode is enough.")],
    "we live in Stroud": [_say("How old is your child?")],
    "she's 2": [_say("What's happening? Tell me in your own words.")],
    "my toddler isn't talking yet and I'm worried she's behind": [_say(
        "Here's what I have:\n- You are: a parent or carer\n- Area: Stroud, Gloucestershire\n- Child's age: 2 years old\n"
        "- What's happening: my toddler isn't talking yet and I'm worried she's behind\nIs that right?",
        ("Yes, that's right", "/affirm"), ("Change something", "/deny"))],
    "/affirm": [
        _say("From what you've told me, this sounds like 'Early help' support (level 2 of 4 in Gloucestershire)."),
        # the cards as the assistant makes them (bot.replies.service_cards), from example records
        service_cards([
            {"name": "Speech and language drop-in (example)", "who_for": "Parents of children under 5",
             "description": "Free drop-in advice for parents of under-5s who are worried about talking and listening.",
             "phone": "01452 000000", "url": "https://example.org/family-hub", "hours": "Tuesdays 09:30-11:30"},
            {"name": "Stay and play (example)", "who_for": "Families with children under 4",
             "description": "Play sessions where you can meet other parents and ask early years staff for advice.",
             "url": "https://example.org/stay-and-play",
             "caution": ["No phone number is listed: check the website for how to join."]}],
            "Services that may help:"),
    ],
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Background:
    """An event loop in a thread, serving aiohttp apps until stopped."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runners: list[web.AppRunner] = []

    def serve(self, app: web.Application, port: int) -> None:
        async def start():
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            self.runners.append(runner)

        asyncio.run_coroutine_threadsafe(start(), self.loop).result(60)

    def stop(self) -> None:
        async def stop():
            for runner in reversed(self.runners):
                await runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _example_rasa() -> web.Application:
    async def webhook(request: web.Request) -> web.Response:
        body = await request.json()
        message = str(body.get("message", ""))
        replies = EXAMPLE_REPLIES.get(message)
        if replies is None and message.startswith("/safeguarding_cue"):
            import json

            from bot.replies import safety_answer

            cue = json.loads(message[len("/safeguarding_cue"):])
            replies = safety_answer({**cue, "escalate": True}, "gloucestershire", "parent", form_paused=True)
        return web.json_response(replies or [_say("Sorry, I didn't follow. Could you say that another way?")])

    async def hello(_request):
        return web.Response(text="Hello from the example replies")

    async def health(_request):  # stands in for the action server's health check too
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/webhooks/rest/webhook", webhook)
    app.router.add_get("/", hello)
    app.router.add_get("/health", health)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.web.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/screenshots", help="folder for the PNGs")
    parser.add_argument("--rasa-url", help="a running Rasa to talk to (default: fixed example replies)")
    parser.add_argument("--action-url", default="http://127.0.0.1:5055", help="that Rasa's action server (with --rasa-url)")
    parser.add_argument("--chromium", default=os.environ.get("EARLYHELP_CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="earlyhelp-screens-"))
    os.environ["EARLYHELP_HOME"] = str(home)

    from playwright.sync_api import sync_playwright

    from bot.web import Settings, create_app
    from bot.web.storage import WebStore

    background = _Background()
    rasa_url, action_url = args.rasa_url, args.action_url
    if not rasa_url:
        port = _free_port()
        background.serve(_example_rasa(), port)
        rasa_url = action_url = f"http://127.0.0.1:{port}"
    settings = Settings(port=_free_port(), rasa_url=rasa_url.rstrip("/"), action_url=action_url.rstrip("/"),
                        secret_key=secrets.token_urlsafe(48),
                        database_url=f"sqlite:///{home / 'screens.db'}", run_delivery_worker=False, sse_poll_seconds=0.5)
    app = create_app(settings)
    background.serve(app, settings.port)
    from bot.web.keys import WARM

    if not app[WARM].wait(300):  # the safeguarding screen loads in the background at start
        print("the safeguarding screen did not load; see the log", file=sys.stderr)
        return 1
    base = f"http://127.0.0.1:{settings.port}"
    password = secrets.token_urlsafe(16)
    WebStore.open(settings.database_url).add_user("duty.worker", password, ["gloucestershire"])
    saved: list[Path] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)

            def conversation(page):
                page.goto(base + "/")
                page.get_by_role("button", name="Start chatting").click()
                page.get_by_role("button", name="A parent or carer").wait_for(timeout=15_000)
                page.get_by_role("button", name="A parent or carer").click()
                page.wait_for_timeout(800)
                for text in ("we live in Stroud", "she's 2", "my toddler isn't talking yet and I'm worried she's behind"):
                    page.get_by_label("Your message").fill(text)
                    page.get_by_label("Your message").press("Enter")
                    page.locator("#typing").wait_for(state="hidden", timeout=15_000)
                    page.wait_for_timeout(300)
                yes = page.get_by_role("button", name="Yes, that's right")
                if yes.count():
                    yes.click()
                page.locator(".service-card").first.wait_for(timeout=15_000)
                page.wait_for_timeout(300)

            desktop = browser.new_page(viewport={"width": 1280, "height": 900})
            desktop.goto(base + "/")
            saved.append(out / "widget-desktop-start.png")
            desktop.screenshot(path=saved[-1], full_page=True)
            conversation(desktop)
            saved.append(out / "widget-desktop.png")
            desktop.screenshot(path=saved[-1], full_page=True)
            saved.append(out / "service-card.png")
            desktop.locator(".service-card").first.screenshot(path=saved[-1])

            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                     has_touch=True, reduced_motion="reduce")
            conversation(phone)
            saved.append(out / "widget-phone.png")
            phone.screenshot(path=saved[-1])

            danger = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
            danger.goto(base + "/")
            danger.get_by_label("Your message").fill("we live in Gloucester and my dad is hitting my sister right now")
            danger.get_by_label("Your message").press("Enter")
            danger.locator(".from-bot").first.wait_for(timeout=15_000)
            danger.locator("#typing").wait_for(state="hidden", timeout=15_000)
            saved.append(out / "widget-phone-safeguarding.png")
            danger.screenshot(path=saved[-1], full_page=True)

            inbox = browser.new_page(viewport={"width": 1280, "height": 900})
            inbox.goto(base + "/duty/login")
            inbox.get_by_label("Username").fill("duty.worker")
            inbox.get_by_label("Password").fill(password)
            inbox.get_by_role("button", name="Log in").click()
            inbox.locator(".escalation").first.wait_for(timeout=15_000)
            inbox.locator(".escalation summary").first.click()
            saved.append(out / "duty-inbox.png")
            inbox.screenshot(path=saved[-1], full_page=True)
            browser.close()
    finally:
        background.stop()
    for path in saved:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
