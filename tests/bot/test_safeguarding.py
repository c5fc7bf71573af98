"""Safeguarding cue detection: quality floor on the dev set, the hard cases by kind, properties, the
cue-bank loader and the ``earlyhelp safeguarding`` command."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.safeguarding import CATEGORIES, Screening, recommended_lines, screen
from bot.safeguarding import similarity
from bot.safeguarding.cues import CueBankError, load_bank

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
BANK = REPO / "knowledge" / "safeguarding"
EARLYHELP = REPO / ".venv" / "bin" / "earlyhelp"


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]


DEV = _rows("safeguarding_cases.jsonl")
BENIGN = [r["text"] for r in DEV if not r["escalate"] and not r.get("unsure")]


# ------------------------------------------------------------------------------------------ the data sets
def test_dev_set_has_the_promised_mix():
    cues = [r for r in DEV if r["escalate"]]
    assert len(DEV) >= 260 and len(cues) >= 130
    assert sum(r["immediate_danger"] for r in DEV) >= 35
    assert len([r for r in DEV if not r["escalate"]]) >= 100
    for category in CATEGORIES:
        assert sum(category in r["categories"] for r in cues) >= 3, category
    holdout = _rows("safeguarding_holdout.jsonl")
    assert 70 <= len(holdout) <= 100
    assert not {r["text"].lower() for r in holdout} & {r["text"].lower() for r in DEV}


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
_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
    assert not screen(benign).escalate
    s = screen(benign + joiner + "call 999 he has a knife")
    assert s.escalate and s.immediate_danger


@_SETTINGS
@given(st.lists(st.sampled_from(["lol", "tbh", "pls", "!!", "😢", "ok", "x"]), max_size=4))
def test_chatter_around_a_disclosure_keeps_it(extra):
    text = " ".join(["my stepdad hits me", *extra])
    assert screen(text).escalate


# ------------------------------------------------------------------------------------------ degraded mode
def test_embedding_failure_degrades_to_the_cue_bank(monkeypatch):
    import bot.embeddings

    def broken(*_a, **_k):
        raise RuntimeError("no model")

    monkeypatch.setenv("EARLYHELP_SAFEGUARDING_EMBEDDINGS", "1")
    monkeypatch.setitem(similarity._state, "failed", False)
    similarity._index.cache_clear()
    monkeypatch.setattr(bot.embeddings, "embed", broken)
    try:
        assert screen("my son is struggling at school and I am worried").to_dict()["escalate"] is False
        assert similarity._state["failed"] is True  # switched itself off
        assert screen("he has a knife and says he will kill me").immediate_danger
    finally:
        similarity._index.cache_clear()


def test_embedding_net_only_ever_makes_unsure(monkeypatch):
    monkeypatch.setenv("EARLYHELP_SAFEGUARDING_EMBEDDINGS", "1")
    monkeypatch.setitem(similarity._state, "failed", False)
    monkeypatch.setattr(similarity, "nearest", lambda text: similarity.Near("self_harm", "suicidal thoughts", 0.9))
    s = screen("everything feels pointless lately")
    assert s.unsure and not s.escalate and s.categories == ["self_harm"]
    assert screen("nobody hurts me").unsure is False  # a cue the person negated is not second-guessed


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


def test_exemplars_file_is_validated(tmp_path):
    folder = _copy_bank(tmp_path)
    path = folder / "exemplars.yml"
    path.write_text(path.read_text(encoding="utf-8").replace("category: fgm", "category: cutting"), encoding="utf-8")
    with pytest.raises(CueBankError, match=r"exemplars\.yml: exemplars\.\d+\.category"):
        similarity.load_exemplars(folder)


# ------------------------------------------------------------------------------------------ the command
def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(EARLYHELP), "safeguarding", *args], input=stdin, capture_output=True, text=True, timeout=120)


def test_cli_json():
    out = _cli("--json", "call 999 he has a knife")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["escalate"] is True and doc["immediate_danger"] is True
    assert set(doc) == {"escalate", "immediate_danger", "categories", "matched", "unsure"}


def test_cli_batch_reports_bad_lines_and_carries_on():
    lines = ['{"text": "wanna kms"}', "this is not json", '{"text": 7}', '{"nope": 1}', '{"text": "I could murder a pizza"}']
    out = _cli("--batch", stdin="\n".join(lines) + "\n")
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
