"""Safeguarding screen, fresh-wording round (helper 23; sets updated by helpers 29 and 31): the blind
holdout5 is kept out of training while the measured holdouts 6 and 7 are training data, the wording the
older holdouts missed or over-read is pinned, the classifier's nearest-neighbour file is checked at load, and the two new thresholds (a weak cue the model is sure about escalates; a cue plus a
model leaning towards "happening now" puts 999 first) do what they say. Real embedding model throughout."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from bot.safeguarding import classifier, screen
from bot.safeguarding.cues import CueBankError

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
BANK = REPO / "knowledge" / "safeguarding"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------ blind sets
# holdout5 and holdout8 (written blind in the 2026-11-29 fourth session) are blind (never trained or tuned on);
# holdout6 (helper 29's round) and holdout7 (measured once at
# b537f8b, training data since helper 31's round) are training data now.
@pytest.mark.parametrize("name", ["safeguarding_holdout5.jsonl", "safeguarding_holdout8.jsonl"])
def test_the_blind_sets_have_the_promised_mix_and_share_nothing_with_training(name):
    rows = _rows(DATA / name)
    assert len(rows) >= 150
    assert sum(r["immediate_danger"] for r in rows) >= 25
    assert sum(not r["escalate"] for r in rows) >= 60
    assert all(r["escalate"] for r in rows if r["immediate_danger"])
    assert all(r["categories"] for r in rows if r["escalate"]) and not any(r["categories"] for r in rows if not r["escalate"])
    blind = {r["text"].lower() for r in rows}
    trained = classifier.load_weights().trained_on
    assert not any(name in f["file"] for f in trained["files"])
    for other in classifier.TRAINING_FILES:
        seen = {r["text"].lower() for r in _rows(REPO / other)}
        assert not blind & seen, f"{name} shares messages with {other}"


@pytest.mark.parametrize("name", ["safeguarding_holdout5.jsonl", "safeguarding_holdout8.jsonl"])
def test_the_blind_sets_are_never_trained_on(name):
    assert name in classifier.BLIND_SETS
    assert not any(name in f for f in classifier.TRAINING_FILES)
    trained = classifier.load_weights().trained_on
    assert not any(name in f["file"] for f in trained["files"])


@pytest.mark.parametrize("name", ["safeguarding_holdout5.jsonl", "safeguarding_holdout8.jsonl"])
def test_training_refuses_the_blind_sets(tmp_path, name):
    # refused by name before a line is read
    with pytest.raises(ValueError, match="blind test set"):
        classifier.train([DATA / name], tmp_path / "classifier.json", {})


@pytest.mark.parametrize("name", ["safeguarding_holdout6.jsonl", "safeguarding_holdout7.jsonl"])
def test_measured_holdouts_are_training_data_now(name):
    assert f"tests/data/{name}" in classifier.TRAINING_FILES
    assert name not in classifier.BLIND_SETS
    trained = classifier.load_weights().trained_on
    assert any(name in f["file"] for f in trained["files"])


def test_holdout7_has_the_promised_mix():
    rows = _rows(DATA / "safeguarding_holdout7.jsonl")
    assert len(rows) >= 180
    assert sum(r["immediate_danger"] for r in rows) >= 25
    assert sum(not r["escalate"] for r in rows) >= 60
    assert all(r["escalate"] for r in rows if r["immediate_danger"])
    assert all(r["categories"] for r in rows if r["escalate"]) and not any(r["categories"] for r in rows if not r["escalate"])


# ------------------------------------------------------------------------------------------ pinned wording
@pytest.mark.parametrize(
    "text",
    [
        # over-read by the screen on holdouts 2-4 (now fixed in the cue bank)
        "my little one keeps running away from me at the shops, any tips?",
        "my son says his PE teacher is 'brutal' because he makes them run laps",
        "she threatened to kill me if I ate her last yogurt lol",
        "my teenager's room is a disgrace, I've told him it's neglect of his duties haha",
        "the toddler keeps hitting his baby sister, how do I stop it?",
        "my son keeps saying 'I'm going to kill you' when he plays Nerf with his dad",
        "my toddler keeps hitting himself on the head when he's frustrated, is that a phase?",
        "my son is obsessed with knives in the sense that he wants to be a chef and we bought him a set",
        "my son said he wants to die his hair blue",
        "i hate PE, the teacher makes us run in the rain",
        "my son went missing in the shopping centre for ten minutes but we found him, I'm still shaking",
        "I smacked my son once when he was little and I still feel guilty, I'd never do it now, how do I manage his tantrums",
        "my kid is always starving after school, any cheap snack ideas",
        "we watched a documentary about child trafficking at school, it was really interesting",
        "my daughter is doing an assembly on modern slavery for anti-slavery day",
        # close benign wording added to the dev set
        "I cut my finger chopping onions lol",
        "my mum took my phone off me for a week, so unfair",
        "my daughter's history project is about the slave trade in Bristol",
        "I'm writing a story for my creative writing class about a girl who is trafficked",
        "my daughter ran away for a night when she was 14, she's 19 now and at uni",
        "my son said 'I'll kill you' to his sister when she took his lego but they're fine now",
    ],
)
def test_close_benign_wording_does_not_escalate(text):
    s = screen(text)
    assert not s.escalate and not s.immediate_danger, s.matched


@pytest.mark.parametrize(
    "text, category",
    [
        # missed on holdouts 2-4 (now cues)
        ("Since my husband lost his job he's been drinking and last week he put his hands round my neck.", "physical_abuse"),
        ("her mother's partner has been coming into her bedroom at night", "sexual_abuse"),
        ("theres older man on insta sayin hell give me £200 if i meet him", "child_sexual_exploitation"),
        ("he's been making my daughter watch porn with him", "sexual_abuse"),
        ("we think our daughter is being made to carry drugs to another town", "child_criminal_exploitation"),
        ("been googling how many paracetamol it takes", "self_harm"),
        ("I hate myself so much I've started planning how I'd do it", "self_harm"),
        ("she's locked the kids out in the garden in the snow and won't let them in", "neglect"),
        ("dad arrived to collect his 2-year-old clearly drunk and drove off with her in the car", "neglect"),
        ("my mum doesnt feed my baby sister properly, she's really skinny", "neglect"),
        ("no one at home cares if im there or not, i slept at the park three nights this week", "missing"),
        ("my son's been recruited by a group at the gym who say he has to 'do his duty' and go abroad", "radicalisation"),
        ("someone calling himself 'coach' asked him to delete the chats and send a picture", "online_grooming"),
        # weak categories worded as family pressure
        ("mum says the engagement party is next month whether i like it or not", "forced_marriage"),
        ("my family said if i dont marry who they chose they'll disown me", "forced_marriage"),
        ("we were moved from house to house and made to grow plants in a loft", "trafficking"),
        ("i have to do favours for my dealer's mates to pay off what i owe", "child_sexual_exploitation"),
    ],
)
def test_wording_the_older_holdouts_missed_escalates(text, category):
    s = screen(text)
    assert s.escalate and category in s.categories, (s.categories, s.matched)


def test_a_cue_that_itself_is_negated_in_a_condition_still_counts():
    # "if I don't marry ... they'll disown me": the negation is the condition, not a denial
    assert screen("if i dont marry him my parents will disown me").escalate


def test_young_children_home_alone_with_nobody_coming_is_immediate():
    s = screen("my 6 and 4 year old are home alone, i'm stuck at work and my partner has disappeared")
    assert s.escalate and s.immediate_danger and "neglect" in s.categories


# ------------------------------------------------------------------------------------------ thresholds
def test_a_weak_cue_the_model_is_sure_about_escalates_but_a_question_or_long_ago_does_not():
    weights = classifier.default_weights()
    assert weights.t_override_unsure < 1.0
    # weak cue alone ("flinches"): a question when the model is not sure
    assert screen("my nephew flinches").unsure
    # a question about the topic, and long ago, keep their gentle question whatever the model says
    s = screen("my dad hit me when I was little")
    assert s.unsure and not s.escalate
    s = screen("what are the signs of grooming?")
    assert not s.escalate


def test_override_escalates_when_the_model_is_sure(monkeypatch):
    weights = classifier.default_weights()
    real = classifier.predict

    def sure(text, w=None):
        p = real(text, w)
        return classifier.Prediction(max(p.p_escalate, weights.t_override_unsure), p.p_immediate, p.categories)

    monkeypatch.setattr(classifier, "predict", sure)
    s = screen("my nephew flinches")
    assert s.escalate and "physical_abuse" in s.categories
    assert any(m.startswith("close in meaning") for m in s.matched)


def test_a_cue_plus_a_model_leaning_to_now_puts_999_first(monkeypatch):
    weights = classifier.default_weights()
    assert weights.t_immediate_after_cue < weights.t_immediate
    text = "my dad hits me"  # a cue, no word saying it is happening now
    assert screen(text).escalate and not screen(text).immediate_danger
    real = classifier.predict

    def leaning(t, w=None):
        p = real(t, w)
        return classifier.Prediction(p.p_escalate, weights.t_immediate_after_cue, p.categories)

    monkeypatch.setattr(classifier, "predict", leaning)
    s = screen(text)
    assert s.escalate and s.immediate_danger and "danger happening now" in s.matched[-1]


# ------------------------------------------------------------------------------------------ neighbour file
def _copy_bank(tmp_path: Path) -> Path:
    folder = tmp_path / "safeguarding"
    shutil.copytree(BANK, folder)
    return folder


def test_neighbour_vote_is_loaded_and_blended():
    weights = classifier.load_weights()
    assert weights.knn is not None and 0 < weights.knn.weight < 1
    assert weights.knn.vectors.shape[1] == 384 and weights.knn.positive.any() and (~weights.knn.positive).any()
    x = classifier._embed([classifier.prepared("my uncle does things to me at night that i hate")])
    blended = float(weights.p_escalate(x)[0])
    logistic = float(weights.escalate.prob(x)[0])
    vote = float(weights.knn.prob(x)[0])
    assert blended == pytest.approx((1 - weights.knn.weight) * logistic + weights.knn.weight * vote, abs=1e-5)


@pytest.mark.parametrize(
    "change, expect",
    [
        (lambda d, f: d["knn"].update(k=0), "knn.k"),
        (lambda d, f: d["knn"].update(weight=2), "knn.weight"),
        (lambda d, f: d["knn"].update(extra=1), "knn:"),
        (lambda d, f: (f / classifier.EXAMPLES_FILE).write_bytes(b"not an archive"), "knn.sha256"),
        (lambda d, f: d["thresholds"].update(override_unsure=0), "thresholds"),
        (lambda d, f: d["thresholds"].update(surprise=0.5), "thresholds"),
    ],
)
def test_classifier_neighbour_file_and_thresholds_are_validated(tmp_path, change, expect):
    folder = _copy_bank(tmp_path)
    path = folder / "classifier.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc, folder)
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(CueBankError) as err:
        classifier.load_weights(folder)
    assert expect in str(err.value)


def test_a_corrupt_archive_with_a_matching_digest_is_refused_by_name(tmp_path):
    folder = _copy_bank(tmp_path)
    raw = b"not an archive"
    (folder / classifier.EXAMPLES_FILE).write_bytes(raw)
    path = folder / "classifier.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["knn"]["sha256"] = hashlib.sha256(raw).hexdigest()
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(CueBankError, match="classifier_examples.npz: not a readable"):
        classifier.load_weights(folder)


def test_missing_archive_is_refused_by_name(tmp_path):
    folder = _copy_bank(tmp_path)
    (folder / classifier.EXAMPLES_FILE).unlink()
    with pytest.raises(CueBankError, match="classifier_examples.npz: cannot read"):
        classifier.load_weights(folder)
