"""Search: filters, ranking, quality over the development query set, index persistence, bad input."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import BadInput, UnknownArea
from directory import Directory
from directory.evaluate import evaluate, load_queries
from directory.index import index_dir
from tests.directory.conftest import FIXTURES, QUERIES

LONDON = dt.timezone(dt.timedelta(0))


def ids(results):
    return [r["id"] for r in results]


def test_results_carry_every_promised_field(seeded):
    result = seeded.search("parenting course", area="gloucestershire", age=6, k=3)[0]
    assert set(result) >= {"id", "name", "organization", "description", "phone", "email", "url", "area", "ages", "hours",
                           "cost", "source", "last_verified", "synthetic", "score", "why", "category"}
    assert result["id"] == "glos-triple-p" and result["synthetic"] is False
    assert "covers Gloucestershire" in result["why"] and "no age limits stated" in result["why"]
    assert any(w.startswith("mentions") for w in result["why"])


def test_area_filter_keeps_local_and_national_services_only(seeded):
    for area in ("gloucestershire", "buckinghamshire", "bath-and-north-east-somerset", "north-lincolnshire"):
        results = seeded.search("support for families", area=area, k=50)
        assert results
        assert all(r["area"] == "national" or area in r["area"] for r in results), area
        assert any(r["area"] == "national" for r in results) and any(r["area"] != "national" for r in results)


def test_area_accepts_names_and_refuses_unknown_areas(seeded):
    assert ids(seeded.search("early help", area="Gloucestershire", k=3)) == ids(seeded.search("early help", area="gloucestershire", k=3))
    with pytest.raises(UnknownArea) as err:
        seeded.search("early help", area="narnia")
    assert "known areas: bath-and-north-east-somerset, buckinghamshire, gloucestershire, north-lincolnshire" in str(err.value)


def test_age_filter_uses_eligibility(seeded):
    teen = seeded.search("talk to someone about my worries", age=18, k=50)
    assert "national-childline" in ids(teen)  # 0-19
    assert "glos-early-years-service" not in ids(seeded.search("early years toddler", age=8, k=50))
    assert "glos-early-years-service" in ids(seeded.search("early years toddler", age=5, k=50))
    for r in seeded.search("children's centre", age=11, k=50):
        assert r["ages"] is None or r["ages"][0] <= 11 <= r["ages"][1]


def test_free_category_send_and_open_now_filters(seeded):
    free = seeded.search("someone to talk to", free_only=True, k=50)
    assert free and all(r["free"] is True for r in free)
    assert "national-frank" not in ids(seeded.search("drugs advice", free_only=True, k=50))  # 0300: not stated free
    money = seeded.search("help", category="money", k=50)
    assert money and all("money" in r["categories"] for r in money)
    send = seeded.search("school support", area="gloucestershire", send=True, k=50)
    assert "glos-sendiass" in ids(send) and all("send" in r["categories"] for r in send)
    with pytest.raises(BadInput, match="unknown category"):
        seeded.search("help", category="astrology")


def test_open_now_follows_schedules_bank_holidays_and_24_7(seeded):
    thursday_4pm = dt.datetime(2026, 11, 26, 16, 0, tzinfo=LONDON)
    friday_445 = dt.datetime(2026, 11, 27, 16, 45, tzinfo=LONDON)
    christmas = dt.datetime(2026, 12, 25, 11, 0, tzinfo=LONDON)
    query = dict(query="worried about a child", area="north-lincolnshire", k=50)
    assert "nlincs-spoc" in ids(seeded.search(**query, open_now=thursday_4pm))
    assert "nlincs-spoc" not in ids(seeded.search(**query, open_now=friday_445))
    late = seeded.search(**query, open_now=christmas)
    assert "nlincs-spoc" not in ids(late) and "national-samaritans" in ids(late)  # 24/7 lines stay open
    assert all(r["hours"] for r in late)
    assert "open at Fri 16:45" in seeded.search(**query, open_now=friday_445)[0]["why"]


def test_local_services_rank_above_national_ones_when_both_fit(seeded):
    assert ids(seeded.search("parenting advice", area="gloucestershire", k=5)).index("glos-triple-p") < \
        ids(seeded.search("parenting advice", area="gloucestershire", k=5)).index("national-family-lives")
    first = seeded.search("worried about a child, who do I call", area="north-lincolnshire", k=3)[0]
    assert first["id"] == "nlincs-spoc"
    # ... but a national service that fits better still wins: a local bonus is a tie-breaker, not a rout
    assert seeded.search("my daughter wants to kill herself", area="gloucestershire", k=1)[0]["id"] == "national-papyrus-hopeline247"


def test_hybrid_search_meets_the_quality_floor_and_beats_each_half(seeded):
    queries = load_queries(QUERIES)
    assert len(queries) >= 60
    known = {s.id for s in seeded.services()}
    assert all(set(q["expected"]) <= known for q in queries)
    report = evaluate(seeded, queries)
    hybrid, lexical, dense = report["hybrid"], report["lexical"], report["dense"]
    assert hybrid["recall@5"] >= 0.95, hybrid["misses"]
    assert hybrid["mrr"] > lexical["mrr"] and hybrid["mrr"] > dense["mrr"]
    assert hybrid["ndcg@10"] > lexical["ndcg@10"] and hybrid["ndcg@10"] > dense["ndcg@10"]


def test_python_bm25_fallback_finds_what_fts5_finds(seeded):
    portable = Directory.open(url=seeded.url, seed=False, lexical="python")
    assert portable.catalog().lexical.name == "python-bm25" and seeded.catalog().lexical.name == "sqlite-fts5"
    queries = load_queries(QUERIES)
    assert evaluate(portable, queries, modes=["hybrid"])["hybrid"]["recall@5"] >= 0.95
    for q in ("Triple P parenting", "single point of contact", "young carers"):
        assert portable.search(q, k=1)[0]["id"] == seeded.search(q, k=1)[0]["id"]


def test_index_is_persisted_keyed_by_content_and_updated_on_import(tmp_path, test_home):
    url = f"sqlite:///{tmp_path / 'directory.db'}"
    first = Directory.open(url=url)
    catalog = first.catalog()
    assert catalog.timings["embedded"] == catalog.size
    folder = index_dir(url, test_home)
    assert folder == tmp_path / "directory-index"
    assert [p.name for p in folder.glob("vectors-*.npz")] == [f"vectors-{catalog.content_hash}.npz"]
    reopened = Directory.open(url=url).catalog()  # a restart loads the vectors instead of embedding again
    assert reopened.timings["vectors"] == 0.0 and "embedded" not in reopened.timings
    assert np.array_equal(reopened.vectors, catalog.vectors)
    first.import_path(FIXTURES / "oruk_service.json")
    updated = first.catalog()
    assert updated.content_hash != catalog.content_hash
    assert updated.timings["embedded"] == 1  # only the new service was embedded
    assert [p.name for p in folder.glob("vectors-*.npz")] == [f"vectors-{updated.content_hash}.npz"]
    assert first.search("dads group", area="buckinghamshire", k=1)[0]["id"] == "fixture-single-service"
    other_process = Directory.open(url=url)  # another process sees the import at its next search
    assert other_process.search("group for dads and male carers", k=1)[0]["id"] == "fixture-single-service"


def test_batch_search_embeds_together_and_matches_single_search(seeded):
    queries = ["young carers", "Triple P", "debt advice"]
    batch = seeded.search_many(queries, area="gloucestershire", k=3)
    assert [ids(b) for b in batch] == [ids(seeded.search(q, area="gloucestershire", k=3)) for q in queries]
    answers = seeded.search_requests([{"query": "young carers", "area": "buckinghamshire"}, {"query": ""}, {"query": "x", "age": 99}])
    assert ids(answers[0])[0] == "bucks-young-carers"
    assert isinstance(answers[1], BadInput) and isinstance(answers[2], BadInput)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"query": ""}, "empty"),
        ({"query": "   \t\n "}, "empty"),
        ({"query": "\x00\x01\x02"}, "empty"),
        ({"query": None}, "must be text"),
        ({"query": "help", "age": -1}, "out of range"),
        ({"query": "help", "age": 26}, "out of range"),
        ({"query": "help", "age": True}, "whole number"),
        ({"query": "help", "age": "3"}, "whole number"),
        ({"query": "help", "k": 0}, "from 1 to 50"),
        ({"query": "help", "k": 51}, "from 1 to 50"),
        ({"query": "help", "open_now": "teatime"}, "ISO"),
    ],
)
def test_bad_input_gets_a_clear_message(seeded, kwargs, message):
    with pytest.raises(BadInput, match=message):
        seeded.search(**kwargs)


def test_ages_at_the_edges_are_fine(seeded):
    assert seeded.search("baby", age=0) and seeded.search("young adult", age=25)


def test_long_and_odd_queries_are_cleaned_not_fatal(seeded):
    long = ("my toddler isn't talking yet and I am worried " * 300)[:10_000]
    assert ids(seeded.search(long, area="gloucestershire", age=2, k=1)) == ["glos-early-years-service"]
    weird = "toddler\x00 not\x1b[31m talking\u202e yet \ufeff" + "\U0001F600" * 50
    assert seeded.search(weird, area="gloucestershire", k=1)
    assert seeded.search('"OR" AND NOT * NEAR( parenting ) ^ -- ;DROP TABLE service;', k=1)  # FTS syntax is data
    assert seeded.count() >= 55


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=300), age=st.one_of(st.none(), st.integers(-5, 40)), k=st.integers(-1, 60))
def test_any_input_gives_results_or_a_clear_bad_input(seeded, query, age, k):
    try:
        results = seeded.search(query, age=age, k=k)
    except BadInput as err:
        assert str(err)
        return
    assert query.strip() and (age is None or 0 <= age <= 25) and 1 <= k <= 50
    assert len(results) <= k
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert all(r["why"] for r in results)


# ---- who contacts a service, against the child's age ------------------------------------------------

@pytest.fixture
def audiences(empty) -> Directory:
    report = empty.import_path(FIXTURES / "audiences.json")
    assert not report["rejected"], report["rejected"]
    return empty


def test_a_toddlers_family_is_not_offered_lines_only_the_child_contacts(audiences):
    results = audiences.search("my toddler isn't talking yet", area="gloucestershire", age=2, k=5)
    assert ids(results)[0] == "fixture-early-years"
    assert "fixture-child-line" not in ids(results)  # only the child contacts it, and a 2-year-old cannot
    assert "fixture-crisis-text" not in ids(results)  # shares "talk", but people contact it about themselves
    assert "fixture-parent-line" in ids(results)  # parents contact it on a child's behalf
    # the same words with no age, or about a child old enough to call, still find the lines
    assert "fixture-child-line" in ids(audiences.search("my toddler isn't talking yet", k=5))
    older = audiences.search("my son wants someone to talk to about his worries", age=12, k=5)
    assert "fixture-child-line" in ids(older) and "fixture-crisis-text" in ids(older)


def test_audiences_are_validated_stored_exported_and_shown(audiences, empty):
    line = audiences.get("fixture-child-line")
    assert line["audiences"] == ["child-self"]
    assert line["who_for"] == "children and young people under 19, who call or chat to it themselves"
    exported = {s["id"]: s for s in audiences.export_oruk()["content"]}
    vocab = [t["taxonomy"]["vocabulary"] for t in exported["fixture-crisis-text"]["service_taxonomys"]]
    assert vocab.count("earlyhelp-audience") == 2
    bad = {"id": "fixture-bad-audience", "name": "Bad Audience (test fixture)", "description": "x" * 50,
           "organization": {"id": "o", "name": "O"}, "service_areas": [{"service_area": "national"}],
           "service_taxonomys": [{"taxonomy": {"name": "toddlers", "vocabulary": "earlyhelp-audience"}}]}
    report = empty.import_services([bad])
    assert report["rejected"] and report["rejected"][0]["field"] == "service_taxonomys[0].taxonomy.name"
    assert "is not an audience" in report["rejected"][0]["message"]


def test_the_development_set_has_age_sensitive_queries(seeded):
    queries = load_queries(QUERIES)
    guarded = [q for q in queries if q.get("must_not")]
    assert len(guarded) >= 6 and any(q["query"] == "my toddler isn't talking yet" for q in guarded)
    assert any(q["query"] == "support for my 20 year old with autism" and "glos-early-years-sen" in q["must_not"] for q in guarded)
    assert any(q["query"] == "my toddler isn't talking yet" and "national-frank" in q["must_not"] for q in guarded)
    report = evaluate(seeded, queries, modes=["hybrid"])["hybrid"]
    assert report["ineligible"] == []  # no guarded query shows a service the family is not eligible for


# ---- what a service's name implies about ages -------------------------------------------------------

def _service(sid, name, description, categories, ages=None, audiences=()):
    doc = {"id": sid, "name": name, "description": description, "organization": {"id": "org-fixture", "name": "Fixture Org"},
           "url": "https://example.org/" + sid, "service_areas": [{"service_area": "gloucestershire"}],
           "service_taxonomys": [{"taxonomy": {"name": c, "vocabulary": "earlyhelp-category"}} for c in categories]
           + [{"taxonomy": {"name": a, "vocabulary": "earlyhelp-audience"}} for a in audiences]}
    if ages:
        doc["eligibilitys"] = [{"minimum_age": ages[0], "maximum_age": ages[1]}]
    return doc


def test_a_name_that_states_an_age_stage_limits_a_service_that_states_no_ages(empty):
    report = empty.import_services([
        _service("fx-ey-sen", "Early Years Inclusion Team (test fixture)",
                 "Advisers for young children with autism and other special educational needs, and their families.", ["send", "early_years"]),
        _service("fx-autism", "Autism Family Support (test fixture)",
                 "Support for families of children and young people with autism.", ["send"], ages=(0, 25)),
        _service("fx-ey-stated", "Early Years and Beyond Club (test fixture)",
                 "A club for children with autism and their brothers and sisters.", ["send"], ages=(0, 11)),
    ])
    assert not report["rejected"], report["rejected"]
    adult = ids(empty.search("support for my 20 year old with autism", age=20, k=5))
    assert "fx-ey-sen" not in adult and adult[0] == "fx-autism"  # the name says early years: under-fives
    toddler = empty.search("support for my 3 year old with autism", age=3, k=5)
    found = {r["id"]: r for r in toddler}
    assert "fx-ey-sen" in found and found["fx-ey-sen"]["ages"] is None  # the source states no ages ...
    assert any("its name says 'early years'" in why and "for ages 0-5" in why for why in found["fx-ey-sen"]["why"])  # ... and says so
    assert "fx-ey-stated" in ids(empty.search("club for my 9 year old with autism", age=9, k=5))  # a stated range wins
    assert "fx-ey-sen" in ids(empty.search("support for a child with autism", k=5))  # no age given: no age filter


def test_the_implied_age_stages_are_data_with_reasons_and_checked(tmp_path):
    from directory.vocab import IMPLIED_AGES_FILE, _load_implied_ages, implied_ages

    stages = _load_implied_ages(IMPLIED_AGES_FILE)
    assert stages and all(s.reason and s.source for s in stages)
    assert implied_ages("Early Years SEN team (Gloucestershire)").max_age == 5
    assert implied_ages("Family Information Service") is None and implied_ages("Yearly early check") is None
    good = {"phrase": "early years", "min_age": 0, "max_age": 5, "reason": "a reason in words", "source": "a source document"}
    for change, message in (({"max_age": 40}, "0 <= min_age <= max_age"), ({"phrase": "Early  Years"}, "stage 1, phrase"),
                            ({"reason": ""}, "stage 1, reason"), ({"min_age": True}, "whole numbers"), ({"extra": 1}, "exactly")):
        path = tmp_path / "stages.json"
        path.write_text(__import__("json").dumps({"about": "x", "stages": [{**good, **change}]}))
        with pytest.raises(ValueError, match=message.replace("(", r"\(")):
            _load_implied_ages(path)


# ---- self-contact services on a child's behalf --------------------------------------------------------

@pytest.mark.parametrize("query, age, wanted", [
    ("I'm using drugs and I have a toddler", 2, "national-frank"),
    ("my partner hits me and we have a baby", 0, "national-domestic-abuse-helpline"),
    ("I can't cope any more", 2, "national-samaritans"),
    ("I feel suicidal, my son is 3", 3, "national-papyrus-hopeline247"),
])
def test_a_parent_asking_about_themselves_still_finds_the_lines_for_adults(seeded, query, age, wanted):
    assert wanted in ids(seeded.search(query, area="gloucestershire", age=age, k=3))


def test_a_self_contact_service_needs_a_shared_word_or_a_clear_meaning_on_a_young_childs_behalf(seeded):
    # FRANK (drugs advice; people contact it about themselves) is about as close in meaning as anything
    # to these weakly matched toddler questions, but shares no word with them: not offered.
    for query, age in (("my toddler isn't talking yet", 2), ("my baby won't stop crying and I'm exhausted", 0),
                       ("my little boy has a high temperature in the night", 3)):
        assert "national-frank" not in ids(seeded.search(query, area="gloucestershire", age=age, k=5)), query
    assert "national-frank" in ids(seeded.search("my toddler isn't talking yet", area="gloucestershire", k=10))  # no age: no rule


def test_fast_query_embedding_gives_the_models_own_vectors():
    from bot.embeddings import clear_query_cache, embed, embed_fast, embed_query

    texts = ["my toddler isn't talking yet", "help with money for school uniform " * 60, "x"]  # one past 256 tokens
    assert np.abs(embed_fast(texts, batch_size=2) - embed(texts)).max() < 1e-5
    clear_query_cache()
    first = embed_query(texts[:1])
    again = embed_query(texts[:1])  # from the cache: the same vector, and a copy the caller cannot spoil
    again[0, 0] = 99.0
    assert np.array_equal(embed_query(texts[:1]), first) and embed_fast([]).shape == (0, 384)
