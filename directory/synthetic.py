"""Made-up services for scale tests, always marked ``synthetic`` and never part of the real directory.

Records are built from templates with a seeded random generator, so the same seed always gives the same
records. Names say "(synthetic N)" and ids start with ``synthetic-``; ``Directory`` refuses them unless it
was opened with ``allow_synthetic=True``.

Every phrase of a synthetic record comes from a bounded vocabulary (about a thousand distinct phrases:
a kind of service, a town, a venue, a theme, an audience, a few stock sentences), so the words differ from
record to record while the phrases repeat. ``compose_vectors`` gives each synthetic record a vector made
from the sentence model's vectors of its phrases (the normalised mean), each phrase embedded once. That is
not the vector the model would give the whole text, and it does not need to be: synthetic records exist to
measure the speed and memory of import, index and search at 100,000 services, and their vectors only have
to be real MiniLM vectors, distinct and spread the way real ones are. Building 100k that way takes
minutes instead of the ~90 minutes of embedding every text; the real per-text embedding rate is measured
separately (bench/directory.py).
"""
from __future__ import annotations

import random
import re
from typing import Callable, Iterator, Sequence

import numpy as np

from directory.vocab import CATEGORIES, NATIONAL, known_area_ids

TOWNS = ["Aylesbury", "High Wycombe", "Chesham", "Amersham", "Marlow", "Bath", "Keynsham", "Midsomer Norton",
         "Radstock", "Gloucester", "Cheltenham", "Stroud", "Tewkesbury", "Cirencester", "Coleford", "Scunthorpe",
         "Brigg", "Barton-upon-Humber", "Epworth", "Winterton"]
VENUES = ["library", "community centre", "family hub", "church hall", "leisure centre", "primary school",
          "children's centre", "village hall", "health centre", "youth centre", "sports club", "scout hut",
          "town hall", "football club", "baptist church", "methodist hall", "park pavilion", "market hall",
          "college", "academy", "civic centre", "arts centre", "museum", "hospital", "surgery", "mosque",
          "gurdwara", "community farm", "allotments", "canal centre"]
KINDS = ["drop-in", "support group", "helpline", "advice service", "course", "club", "project", "team", "clinic", "hub"]
THEMES = {
    "parenting": ["parenting", "positive behaviour", "routines and boundaries", "bedtime and sleep"],
    "early_years": ["baby and toddler play", "early language and talking", "stay and play", "school readiness"],
    "send": ["autism and ADHD", "special educational needs", "disabled children", "sensory play"],
    "education": ["school attendance", "homework", "exclusion advice", "college and training"],
    "money": ["benefits advice", "debt advice", "school uniform grants", "food bank vouchers"],
    "housing": ["housing advice", "homelessness prevention", "tenancy support"],
    "mental_health": ["wellbeing", "anxiety", "low mood", "self-esteem"],
    "domestic_abuse": ["domestic abuse recovery", "healthy relationships", "safety planning"],
    "substance_misuse": ["alcohol support", "drug advice", "recovery"],
    "young_carers": ["young carers", "sibling carers"],
    "youth": ["youth club", "mentoring", "sport", "volunteering"],
    "family_support": ["family support", "family mediation", "kinship carers"],
}
AUDIENCES = [("parents of babies", 0, 1), ("families with under-fives", 0, 5), ("children aged 5 to 11", 5, 11),
             ("young people aged 11 to 18", 11, 18), ("young adults up to 25", 16, 25), ("the whole family", None, None)]
OFFERS = [
    "It offers friendly sessions and practical advice", "Sessions are informal and relaxed",
    "Trained staff and volunteers run every session", "You can come on your own or bring someone",
    "There is a quiet space if you need one", "Interpreters can be arranged", "Refreshments are provided",
    "Places are limited, so ring first", "No referral is needed", "A professional can refer you",
    "You can also self-refer", "Sessions run in term time", "Sessions run all year round",
    "Home visits are possible", "Online sessions are available too", "It is run by a local charity",
    "It is run by the council", "Parents helped design it", "Sessions last about an hour",
    "Courses run over six weeks", "There is a creche for younger children", "The building has step-free access",
    "Dads are welcome", "Grandparents and carers are welcome", "It is confidential",
    "Staff can help you fill in forms", "It follows a recognised programme", "Groups are small",
    "Ask about places for siblings", "Bring a packed lunch on longer days",
]
LINKS = [
    "Staff link families with other local help", "It can signpost you to health visitors and GPs",
    "It works closely with schools", "It can put you in touch with the Family Information Service",
    "It can refer on to specialist services", "It works alongside early help teams",
    "It can help with a referral to children's social care if needed", "It shares information only with consent",
    "It links with local food banks", "It can point you to money advice", "It works with housing officers",
    "It can connect you with other parents", "It links with youth workers", "It works with the local library",
    "It can help you find childcare", "It can help with school admissions questions",
    "It works with the police community support officers", "It links with local sports clubs",
    "It can arrange a follow-up call", "It keeps in touch after the course ends",
]
DAYSETS = ["MO,TU,WE,TH,FR", "MO,WE,FR", "TU,TH", "SA", "MO,TU,WE,TH,FR,SA,SU"]

_NOTE = re.compile(r"\s*\(synthetic \d+\)")
_SPLIT = re.compile(r"[.,;]\s+|[.]$")


def generate(n: int, seed: int = 7) -> Iterator[dict]:
    rng = random.Random(seed)
    areas = list(known_area_ids())
    categories = [c for c in THEMES if c in CATEGORIES]
    for i in range(n):
        category = rng.choice(categories)
        theme = rng.choice(THEMES[category])
        kind = rng.choice(KINDS)
        town = rng.choice(TOWNS)
        venue = rng.choice(VENUES)
        audience, low, high = rng.choice(AUDIENCES)
        area = NATIONAL if rng.random() < 0.08 else rng.choice(areas)
        free = rng.random() < 0.7
        start = rng.choice(["08:30", "09:00", "09:30", "10:00", "13:00"])
        end = rng.choice(["12:00", "15:00", "16:30", "17:00", "20:00"])
        extra = rng.sample(categories, k=rng.choice([0, 0, 1]))
        offer, link = rng.choice(OFFERS), rng.choice(LINKS)
        sid = f"synthetic-{seed}-{i:06d}"
        yield {
            "id": sid,
            "name": f"{theme[0].upper()}{theme[1:]} {kind}, {town}, {venue} (synthetic {i})",
            "description": f"A made-up {kind} in {town}. It is about {theme} for {audience}. {offer}. {link}.",
            "organization": {"id": f"synthetic-org-{i % 997}", "name": f"Synthetic organisation {i % 997}"},
            "contacts": [{"phones": [{"number": f"01{rng.randint(100, 999)} {rng.randint(100000, 999999)}"}]}],
            "regular_schedules": [{"byday": rng.choice(DAYSETS), "opens_at": start, "closes_at": end}] if start < end else [],
            "eligibilitys": [{"minimum_age": low, "maximum_age": high}] if low is not None else [],
            "cost_options": [{"option": "Free", "amount": 0}] if free else [{"option": "Charge", "amount": rng.choice([2, 5, 10])}],
            "service_areas": [{"service_area": area}],
            "service_taxonomys": [{"taxonomy": {"name": c, "vocabulary": "earlyhelp-category"}} for c in dict.fromkeys([category, *extra])],
            "source": "synthetic (directory.synthetic)",
            "synthetic": True,
        }


def phrases(text: str) -> list[str]:
    """The phrases of a synthetic record's embedding text (its "(synthetic N)" note set aside)."""
    return [p.strip() for p in _SPLIT.split(_NOTE.sub("", text)) if p.strip()]


def compose_vectors(texts: Sequence[str], embed: Callable[[list[str]], np.ndarray],
                    cache: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """One unit vector per synthetic text: the normalised mean of its phrases' vectors.

    Each distinct phrase is embedded once (``cache`` keeps them across calls), so the cost grows with the
    bounded phrase vocabulary, not with the number of records.
    """
    cache = {} if cache is None else cache
    split = [phrases(t) or [t] for t in texts]
    missing = sorted({p for parts in split for p in parts if p not in cache})
    if missing:
        for p, v in zip(missing, embed(missing)):
            cache[p] = v
    out = np.zeros((len(texts), next(iter(cache.values())).shape[0] if cache else 384), dtype=np.float32)
    for row, parts in enumerate(split):
        v = np.sum([cache[p] for p in parts], axis=0)
        out[row] = v / (np.linalg.norm(v) or 1.0)
    return out
