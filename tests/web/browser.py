"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright (no browser is
downloaded), and axe-core injected from the vendored npm file."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

CHROMIUM = os.environ.get("EARLYHELP_CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
EXIT_URL = "https://www.bbc.co.uk/weather"


def launch(playwright, bypass_csp: bool = False, **options):
    """A fresh headless Chromium with its own throw-away profile; returns (context, cleanup).

    ``bypass_csp`` switches our Content-Security-Policy off in this browser: for injecting axe-core, and
    for proving that hostile text is rendered as text by the page's own code, not merely blocked by CSP.
    """
    profile = tempfile.mkdtemp(prefix="earlyhelp-chromium-")
    context = playwright.chromium.launch_persistent_context(
        profile, executable_path=CHROMIUM, headless=True, args=ARGS, bypass_csp=bypass_csp,
        **{"viewport": {"width": 1280, "height": 900}, **options},
    )

    def close() -> None:
        context.close()
        shutil.rmtree(profile, ignore_errors=True)

    return context, close


def neutral_site(context) -> None:
    """Answer the quick-exit site locally, so leaving is tested without leaving this machine."""
    context.route(EXIT_URL + "**", lambda route: route.fulfill(
        status=200, content_type="text/html", body="<!doctype html><title>Weather</title><h1>Weather</h1>"))


def axe_violations(page, impacts=("serious", "critical")) -> list[dict]:
    """axe-core's WCAG 2.x A/AA (and 2.2) violations of the given impacts on the page as it is now."""
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                           nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
        }"""
    )
    return [v for v in result if v["impact"] in impacts]
