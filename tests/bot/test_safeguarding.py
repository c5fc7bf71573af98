"""Safeguarding cue detection: quality floor on the dev set, the hard cases by kind, properties, the
cue-bank and classifier loaders, and the ``earlyhelp safeguarding`` command. The classifier runs on the
real embedding model (batched once per module for the dev-set floor)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hashlib

import numpy as np

from bot.safeguarding import CATEGORIES, Screening, classifier, recommended_lines, screen
from bot.safeguarding.cues import CueBankError, load_bank

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
BANK = REPO / "knowledge" / "safeguarding"
EARLYHELP = REPO / ".venv" / "bin" / "earlyhelp"


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]


DEV = _rows("safeguarding_cases.jsonl")
BENIGN = [r["text"] for r in DEV if not r["escalate"] and not r.get("unsure")]
# in none of the data sets; the cue bank has no pattern for it, the classifier recognises it
MEANING_ONLY = "my uncle does things to me at night that i hate and he says nobody will believe me"


# ------------------------------------------------------------------------------------------ the data sets
def test_dev_set_has_the_promised_mix():
    cues = [r for r in DEV if r["escalate"]]
    assert len(DEV) >= 260 and len(cues) >= 130
    assert sum(r["immediate_danger"] for r in DEV) >= 35
    assert len([r for r in DEV if not r["escalate"]]) >= 100
    for category in CATEGORIES:
        assert sum(category in r["categories"] for r in cues) >= 3, category
    seen = {r["text"].lower() for r in DEV}
    for name in ("safeguarding_holdout2.jsonl", "safeguarding_holdout3.jsonl", "safeguarding_holdout4.jsonl",
                 "safeguarding_holdout6.jsonl", "safeguarding_holdout7.jsonl"):
        holdout = _rows(name)
        assert len(holdout) >= 120 and sum(not r["escalate"] for r in holdout) >= 50, name
        texts = {r["text"].lower() for r in holdout}
        assert not texts & seen, f"{name} shares messages with the dev set or the other holdout"
        seen |= texts


REAL_EMBED = classifier._embed


@pytest.fixture(scope="module")
def batched():
    """Every unit of every dev message embedded in one batched call by the real model (batching only makes
    the tests fast); other texts are embedded as they come and remembered."""
    units = sorted({u for r in DEV for u in classifier.units(r["text"])})
    return dict(zip(units, REAL_EMBED(units)))


@pytest.fixture(autouse=True)
def _fast_embeddings(batched, monkeypatch):
    def embed(pieces):
        missing = [p for p in pieces if p not in batched]
        if missing:
            batched.update(zip(missing, REAL_EMBED(missing)))
        return np.stack([batched[p] for p in pieces])

    monkeypatch.setattr(classifier, "_embed", embed)


def test_quality_floor_on_dev_set():
    results = [(r, screen(r["text"])) for r in DEV]
    positives = [s for r, s in results if r["escalate"]]
    benign = [s for r, s in results if not r["escalate"]]
    immediate = [s for r, s in results if r["immediate_danger"]]
    recall = sum(s.escalate for s in positives) / len(positives)
    false_alarms = sum(s.escalate for s in benign) / len(benign)
    missed_now = [r["text"] for r, s in results if r["immediate_danger"] and not s.immediate_danger]
    assert recall >= 0.98
    assert not missed_now
    assert false_alarms <= 0.05
    assert len(immediate) >= 35


def test_the_shipped_classifier_was_trained_on_the_current_training_files():
    trained = classifier.load_weights().trained_on
    files = {f["file"]: f["sha256"] for f in trained["files"]}
    assert sorted(files) == sorted(classifier.TRAINING_FILES)
    assert "tests/data/safeguarding_cases.jsonl" in files
    for name, digest in files.items():
        assert hashlib.sha256((REPO / name).read_bytes()).hexdigest() == digest, (
            f"{name} changed: run .venv/bin/python -m bot.safeguarding.classifier train")
    assert trained["rows"] == sum(len(_rows(Path(name).name)) for name in files)


# ------------------------------------------------------------------------------------------ by kind of case
@pytest.mark.parametrize(
    "text",
    [
        "he's got a knife and he says he'll stab me",
        "i've taken all my tablets",
        "my 2 year old has been left home alone all day",
        "help my stepdad is punching my mum right now",
        "I'm on the bridge, going to jump",
        "he threatened to kill us all",
    ],
)
def test_immediate_danger(text):
    s = screen(text)
    assert s.immediate_danger and s.escalate


@pytest.mark.parametrize(
    "text",
    [
        "nobody hurts me",
        "he has never hit her",
        "my dad doesnt hit us he's just strict",
        "this homework is killing me",
        "I'm dying to go",
        "my mum will kill me if I'm late",
        "I could murder a pizza",
        "years ago my dad hit us but he left and we're safe now",
        "my son is struggling at school",
        "money is tight",
    ],
)
def test_negation_idiom_past_and_worries_do_not_escalate(text):
    s = screen(text)
    assert not s.escalate and not s.immediate_danger and s.categories == []


@pytest.mark.parametrize(
    "text,category",
    [
        ("nobody knows he hits me", "physical_abuse"),  # negation about something else
        ("he doesnt stop hitting me", "physical_abuse"),
        ("my dad used to hit me and he still does", "physical_abuse"),  # past but ongoing
        ("he hit me years ago and now he's started again", "physical_abuse"),
        ("my friend's stepdad hits her", "physical_abuse"),  # third person
        ("he hits me n says dont tell", "physical_abuse"),  # text-speak
        ("ma dad beats me", "physical_abuse"),
        ("wanna kms", "self_harm"),
        ("A pupil disclosed that her uncle sexually abused her", "sexual_abuse"),  # professional
        ("unexplained bruising to the baby's face", "physical_abuse"),
        ("this homework is killing me and my dad hits me when I get it wrong", "physical_abuse"),  # idiom + cue
    ],
)
def test_cues_still_found_around_negation_past_idiom_and_in_any_voice(text, category):
    s = screen(text)
    assert s.escalate, s
    assert category in s.categories


def test_long_ago_and_not_said_to_be_settled_asks_gently():
    s = screen("my dad hit me when I was little")
    assert s.unsure and not s.escalate
    assert s.matched and "long ago" in s.matched[0]


def test_a_question_about_the_topic_is_unsure_not_an_escalation():
    s = screen("how do I know if my child is being groomed?")
    assert s.unsure and not s.escalate


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_category_is_detected(category):
    texts = [r["text"] for r in DEV if r["escalate"] and category in r["categories"]]
    found = sum(category in screen(t).categories for t in texts)
    assert found >= len(texts) - 1 and found >= 3


def test_categories_are_ordered_most_serious_first_and_matched_is_short():
    s = screen("my uncle raped me and now i want to kill myself, everyone would be better off without me")
    assert s.categories[:2] == ["sexual_abuse", "self_harm"]
    assert all(len(m) <= 100 for m in s.matched)
    assert not any("uncle raped me" in m for m in s.matched)  # cue names, not the person's words


def test_immediate_categories_come_first():
    s = screen("I feel worthless. My mum calls me useless every day. I've just taken 20 paracetamol.")
    assert s.immediate_danger
    assert s.categories[0] == "self_harm"
    assert "emotional_abuse" in s.categories


def test_to_dict_shape():
    doc = screen("my boyfriend hits me").to_dict()
    assert list(doc) == ["escalate", "immediate_danger", "categories", "matched", "unsure"]
    assert doc["escalate"] is True and "domestic_abuse" in doc["categories"]
    json.dumps(doc)


@pytest.mark.parametrize("text", ["", "   ", "\x00\x01\x02", "🙂🙂🙂", "a" * 300_000, None, 12345])
def test_odd_input_never_raises(text):
    s = screen(text)  # type: ignore[arg-type]
    assert isinstance(s, Screening) and not s.escalate


def test_huge_text_still_finds_a_cue_at_either_end():
    filler = "we had a nice day at the park. " * 20_000
    assert screen("he has a knife. " + filler).immediate_danger
    assert screen(filler + "he has a knife.").immediate_danger


# ------------------------------------------------------------------------------------------ properties
_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(st.text(max_size=400))
def test_any_text_gives_a_consistent_screening(text):
    s = screen(text)
    assert set(s.categories) <= set(CATEGORIES)
    assert len(s.categories) == len(set(s.categories))
    assert not s.immediate_danger or s.escalate
    assert not (s.escalate and s.unsure)
    assert not s.escalate or s.categories


@_SETTINGS
@given(st.sampled_from(BENIGN), st.sampled_from(["", " ", ". ", "\n", " and "]))
def test_adding_a_knife_emergency_to_benign_text_escalates(benign, joiner):
    s = screen(benign + joiner + "call 999 he has a knife")
    assert s.escalate and s.immediate_danger


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["lol", "tbh", "pls", "!!", "😢", "ok", "x"]), max_size=4))
def test_chatter_around_a_disclosure_keeps_it(extra):
    text = " ".join(["my stepdad hits me", *extra])
    assert screen(text).escalate


# ------------------------------------------------------------------------------------------ by meaning
def test_a_disclosure_in_words_no_cue_knows_is_escalated_by_meaning(monkeypatch):
    text = MEANING_ONLY
    monkeypatch.setenv("EARLYHELP_SAFEGUARDING_EMBEDDINGS", "0")
    assert not screen(text).escalate  # the cue bank alone misses it
    monkeypatch.setenv("EARLYHELP_SAFEGUARDING_EMBEDDINGS", "1")
    s = screen(text)
    assert s.escalate and s.categories and s.matched[0].startswith("close in meaning to")
    assert s.by_meaning_only and "by_meaning_only" not in s.to_dict()  # flagged for the triage, not in the JSON
    assert not screen("my dad hits me with his belt").by_meaning_only  # a cue of the bank


def test_what_the_cue_bank_dismissed_or_only_wondered_about_is_not_overridden():
    for text in ["nobody hurts me", "years ago my dad hit us but he left and we're safe now"]:
        s = screen(text)
        assert not s.escalate and not s.unsure
    s = screen("my dad hit me when I was little")  # long ago, not said to be settled: a gentle question
    assert s.unsure and not s.escalate


def test_embedding_failure_degrades_to_the_cue_bank(monkeypatch):
    import bot.embeddings

    def broken(*_a, **_k):
        raise RuntimeError("no model")

    monkeypatch.setitem(classifier._state, "failed", False)
    monkeypatch.setattr(classifier, "_embed", REAL_EMBED)
    for name in ("embed", "embed_fast", "embed_query"):  # whichever path the classifier takes
        monkeypatch.setattr(bot.embeddings, name, broken)
    assert screen("my son is struggling at school and I am worried").to_dict()["escalate"] is False
    assert classifier._state["failed"] is True  # switched itself off for the rest of the process
    assert not classifier.enabled()
    assert screen("he has a knife and says he will kill me").immediate_danger
    assert not screen(MEANING_ONLY).escalate  # degraded: only what the cue bank knows


@pytest.mark.parametrize(
    "change,expect",
    [
        (lambda d: d["thresholds"].update(escalate=1.5), "thresholds"),
        (lambda d: d["thresholds"].update(unsure=0.95), "thresholds.unsure"),
        (lambda d: d["heads"]["categories"].pop("fgm"), "heads.categories"),
        (lambda d: d["heads"]["escalate"].update(w=[0.1] * 10), "heads.escalate"),
        (lambda d: d.update(model="another-model"), "model"),
    ],
)
def test_classifier_file_is_validated(tmp_path, change, expect):
    folder = _copy_bank(tmp_path)
    path = folder / "classifier.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(CueBankError) as err:
        classifier.load_weights(folder)
    assert "classifier.json" in str(err.value) and expect in str(err.value)


def test_classifier_file_that_is_not_json_is_refused(tmp_path):
    folder = _copy_bank(tmp_path)
    (folder / "classifier.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CueBankError, match=r"classifier\.json: not valid JSON"):
        classifier.load_weights(folder)


def test_logistic_fit_learns_a_separable_rule():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 384))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(float)
    head = classifier.fit_logistic(x, y)
    assert ((head.prob(x.astype(np.float32)) >= 0.5) == (y > 0.5)).mean() >= 0.97


# ------------------------------------------------------------------------------------------ helplines
def test_recommended_lines_by_speaker():
    assert recommended_lines(["self_harm"], "young_person")[0] == "childline"
    assert "papyrus" in recommended_lines(["self_harm"], "young_person")
    assert recommended_lines(["physical_abuse"], "parent") == ["nspcc"]
    assert recommended_lines(["forced_marriage"], None)[0] == "karma_nirvana"
    both = recommended_lines(["domestic_abuse", "physical_abuse"], "parent")
    assert both[0] == "domestic_abuse_helpline" and len(both) == len(set(both))
    assert recommended_lines([], "parent") == []
    assert recommended_lines(["not_a_category"], "martian") == []


# ------------------------------------------------------------------------------------------ cue bank loader
def _copy_bank(tmp_path: Path) -> Path:
    folder = tmp_path / "safeguarding"
    shutil.copytree(BANK, folder)
    return folder


def test_shipped_bank_loads():
    bank = load_bank(BANK)
    assert set(bank.order) == set(CATEGORIES)
    assert {c for cue in bank.cues for c in cue.categories} == set(CATEGORIES)


@pytest.mark.parametrize(
    "file,old,new,expect",
    [
        ("cues.yml", "source: \"003\"", "source: \"seed-9\"", ["cues.yml", "cues.0.source"]),
        ("cues.yml", "categories: [physical_abuse]", "categories: [bruises]", ["cues.yml", "categories", "bruises"]),
        ("cues.yml", "(?:been |got |was ", "((?:been |got |was ", ["cues.yml", "cues.0.patterns.2", "bad regular expression"]),
        ("cues.yml", "<<weapon>> (?:to", "<<weapons>> (?:to", ["cues.yml", "cues.0.patterns.1", "<<weapons>>"]),
        ("modifiers.yml", "negation_window_words: 5", "negation_window_words: five", ["modifiers.yml", "negation_window_words"]),
        ("lines.yml", "young_person: [childline, papyrus", "young_person: [childline, hopeline", ["lines.yml", "self_harm", "hopeline"]),
    ],
)
def test_loader_rejects_a_broken_file_naming_file_and_field(tmp_path, file, old, new, expect):
    folder = _copy_bank(tmp_path)
    path = folder / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(CueBankError) as err:
        load_bank(folder)
    for piece in expect:
        assert piece in str(err.value)


def test_loader_rejects_invalid_yaml(tmp_path):
    folder = _copy_bank(tmp_path)
    (folder / "cues.yml").write_text("cues: [unclosed\n", encoding="utf-8")
    with pytest.raises(CueBankError, match=r"cues\.yml: not valid YAML"):
        load_bank(folder)


# ------------------------------------------------------------------------------------------ the command
def _cli(*args: str, stdin: str | None = None, meaning: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "EARLYHELP_SAFEGUARDING_EMBEDDINGS": "1" if meaning else "0"}
    return subprocess.run([str(EARLYHELP), "safeguarding", *args], input=stdin, capture_output=True, text=True,
                          timeout=300, env=env)


def test_cli_json():
    out = _cli("--json", "call 999 he has a knife")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["escalate"] is True and doc["immediate_danger"] is True
    assert set(doc) == {"escalate", "immediate_danger", "categories", "matched", "unsure"}


def test_cli_batch_reports_bad_lines_and_carries_on():
    lines = ['{"text": "wanna kms"}', "this is not json", '{"text": 7}', '{"nope": 1}', '{"text": "I could murder a pizza"}']
    # the cue bank alone (the classifier is covered in-process above; this saves a model load)
    out = _cli("--batch", stdin="\n".join(lines) + "\n", meaning=False)
    assert out.returncode == 0, out.stderr
    docs = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(docs) == 5
    assert docs[0]["escalate"] is True and docs[0]["categories"] == ["self_harm"]
    assert all("error" in d for d in docs[1:4])
    assert docs[4] == {"escalate": False, "immediate_danger": False, "categories": [], "matched": [], "unsure": False}


def test_cli_without_text_is_bad_usage():
    out = _cli("--json")
    assert out.returncode == 2
    assert "error" in json.loads(out.stdout)


@pytest.mark.parametrize("text", [
    "my mobile is 07700 900777", "postcode BS1 4DJ", "ring 01225 396000", "home phone 01494 475000",
    "my email: sam.jones@example.net", "I'm Laura, his aunt", "we live at 7 Mill Lane, Brigg", "LN1 3AB",
    "his birthday is 01/02/2016",
])
def test_contact_and_identity_details_alone_raise_nothing(text):
    # People answer "how can we reach you?" with a bare number or postcode; the meaning classifier once
    # read "landline 0117 496 0123" as self-harm and sent it to the duty team. (Not the training rows.)
    found = screen(text)
    assert not found.escalate and not found.unsure, found.to_dict()
