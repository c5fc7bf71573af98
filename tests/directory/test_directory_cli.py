"""``earlyhelp directory``: the real command line in a subprocess, with this run's $EARLYHELP_HOME."""
from __future__ import annotations

import json
import os
import subprocess

from tests.conftest import EARLYHELP
from tests.directory.conftest import FIXTURES


def earlyhelp(*args: str, stdin: str | None = None, home=None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if home is not None:
        env["EARLYHELP_HOME"] = str(home)
    return subprocess.run([str(EARLYHELP), "directory", *args], input=stdin, capture_output=True, text=True, env=env, timeout=180)


def test_search_gives_the_local_early_years_services_first():
    done = earlyhelp("search", "--area", "gloucestershire", "--age", "2", "my toddler isn't talking yet", "--json")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    assert results[0]["id"] == "glos-early-years-service"
    assert results[0]["phone"] == "01452 427224" and results[0]["ages"] == [0, 5]
    assert results[0]["source"].startswith("003_aa72d77c532b9f3c.txt") and results[0]["last_verified"] == "2020-03-01"
    assert "covers Gloucestershire" in results[0]["why"]
    assert all(r["area"] == "national" or "gloucestershire" in r["area"] for r in results)
    assert all(r["ages"] is None or r["ages"][0] <= 2 <= r["ages"][1] for r in results)


def test_batch_answers_every_line_and_reports_bad_ones():
    lines = "\n".join([
        json.dumps({"query": "Triple P parenting", "area": "gloucestershire", "k": 2}),
        "this is not json",
        json.dumps({"query": "   "}),
        json.dumps({"query": "young carers", "age": 99}),
        json.dumps({"query": "drugs", "area": "mordor"}),
        json.dumps({"query": 42}),
        json.dumps(["a", "list"]),
        "",
        json.dumps({"query": "single point of contact", "area": "north-lincolnshire"}),
    ]) + "\n"
    done = earlyhelp("search", "--batch", stdin=lines)
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(out) == 8
    assert [r["id"] for r in out[0]["results"]][0] == "glos-triple-p" and len(out[0]["results"]) == 2
    assert out[1]["error"].startswith("line is not valid JSON")
    assert "empty" in out[2]["error"]
    assert "out of range" in out[3]["error"]
    assert "unknown area 'mordor'" in out[4]["error"]
    assert out[5]["error"] == "'query' must be str, got int"
    assert out[6]["error"] == "each line must be a JSON object"
    assert out[7]["results"][0]["id"] == "nlincs-spoc"


def test_bad_search_input_exits_2_with_a_message():
    done = earlyhelp("search", "--age", "40", "help with sleep", "--json")
    assert done.returncode == 2
    assert "out of range" in json.loads(done.stdout)["error"] and "out of range" in done.stderr


def test_import_and_export_on_the_command_line(tmp_path):
    home = tmp_path / "home"
    done = earlyhelp("import", "--area", "buckinghamshire", str(FIXTURES / "oruk_page.json"), "--json", home=home)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["imported"] == 3
    hostile = earlyhelp("import", str(FIXTURES / "hostile.json"), "--json", home=home)
    assert hostile.returncode == 2
    report = json.loads(hostile.stdout)
    assert report["imported"] == 3 and len(report["rejected"]) == 13
    assert "13 record(s) rejected" in hostile.stderr
    broken = earlyhelp("import", str(FIXTURES / "malformed.json"), "--json", home=home)
    assert broken.returncode == 2 and "not valid JSON" in json.loads(broken.stdout)["error"]
    exported = earlyhelp("export", "--format", "oruk-json", home=home)
    assert exported.returncode == 0
    doc = json.loads(exported.stdout)
    by_id = {s["id"]: s for s in doc["content"]}
    assert doc["totalElements"] == len(doc["content"]) >= 62 + 6
    assert {"buckinghamshire", "gloucestershire"} <= {a["service_area"] for a in by_id["fixture-stay-and-play"]["service_areas"]}
    assert (home / "directory.db").exists()
