"""``earlyhelp triage`` as a person or a script runs it: the real console script in a real process
(``--json``, ``--batch`` with bad lines, exit code 2 on bad input and an unknown area), per
``../shared/interfaces.md``."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from bot.areas import get_area
from tests.conftest import EARLYHELP

AREAS = ("buckinghamshire", "bath-and-north-east-somerset", "gloucestershire", "north-lincolnshire")
HARM = "His dad hit him with a belt and left bruises on his back."
BULLIED = "My son is being bullied at school."


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")  # the cores are shared; one thread is faster here
    return subprocess.run([str(EARLYHELP), "triage", *args], input=stdin, env=env, capture_output=True, text=True,
                          timeout=240)


def test_json_gives_the_documented_fields_in_the_areas_words():
    done = cli("--json", "--area", "north-lincolnshire", HARM)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert {"level", "label", "confidence", "reasons", "next_questions"} <= set(doc)
    own = get_area("north-lincolnshire").level(4)
    assert (doc["level"], doc["label"]) == (own.number, own.name)
    assert 0 <= doc["confidence"] <= 1 and doc["reasons"][0]["domain"] == "safeguarding"
    assert all({"domain", "plain", "source"} <= set(r) for r in doc["reasons"])
    assert "999" in doc["explanation"]


def test_batch_answers_every_line_in_order_and_carries_on_after_bad_ones():
    lines = [
        {"text": BULLIED, "area": "gloucestershire"},
        "this is not json",
        {"text": HARM, "area": "narnia"},
        {"text": 5},
        [1, 2],
        {"text": "   "},
        {"text": ["We're struggling to pay the bills.", "My 6 year old isn't talking much yet.",
                  "I feel very isolated with no family nearby."], "area": "buckinghamshire"},
        {"text": BULLIED, "answers": {"support": "not_enough"}},
        {"text": BULLIED, "answers": {"harm": "perhaps"}},
        {"text": "😀😀"},
        {"text": HARM},
    ]
    stdin = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n\n"
    done = cli("--batch", stdin=stdin)
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(out) == len(lines)
    assert out[0]["label"] == get_area("gloucestershire").level(2).name and out[0]["level"] == 2
    assert "not valid JSON" in out[1]["error"]
    assert "narnia" in out[2]["error"] and all(a in out[2]["error"] for a in AREAS)
    assert "text" in out[3]["error"]
    assert "JSON object" in out[4]["error"]
    assert "empty" in out[5]["error"]
    assert out[6]["shared_level"] == 3 and out[6]["label"] == get_area("buckinghamshire").level(3).name
    assert out[7]["shared_level"] == 3  # support in place but not enough: one level up
    assert "answers.harm" in out[8]["error"]
    assert out[9]["needs_more"] and "tell me" in out[9]["message"].lower()
    assert out[10]["level"] == 4 and out[10]["label"] == "Specialist"


@pytest.mark.parametrize(
    "args, words",
    [
        (("--area", "narnia", BULLIED), "known areas: bath-and-north-east-somerset, buckinghamshire"),
        (("",), "empty"),
        (("--answer", "harm", BULLIED), "QUESTION=VALUE"),
        (("--answer", "age=300", BULLIED), "answers.age"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(args, words):
    done = cli(*args)
    assert done.returncode == 2 and words in done.stderr and done.stdout == ""


def test_bad_input_with_json_is_an_error_document():
    for args, words in ((("--area", "narnia", BULLIED), "north-lincolnshire"), ((), "empty")):
        done = cli("--json", *args)
        assert done.returncode == 2 and words in json.loads(done.stdout)["error"]


def test_bad_usage_exits_2():
    assert cli("--no-such-flag", BULLIED).returncode == 2


def test_plain_output_reads_as_words_and_answers_change_the_level():
    done = cli("--area", "gloucestershire", "--answer", "needs_count=3", BULLIED)
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    own = get_area("gloucestershire").level(3)
    assert first.startswith(f"Level 3: {own.name}")
    assert "child development:" in done.stdout and "several needs" in done.stdout
    assert own.meaning in done.stdout


def test_question_bank_is_printed_for_the_conversation_and_councils():
    done = cli("--questions", "--json")
    assert done.returncode == 0, done.stderr
    bank = json.loads(done.stdout)["questions"]
    assert [q["id"] for q in bank][:1] == ["harm"]
    assert all(o["means"] and o["value"] and o["title"] for q in bank for o in q["options"])
