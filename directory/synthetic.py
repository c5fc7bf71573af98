"""Made-up services for scale tests, always marked ``synthetic`` and never part of the real directory.

Records are built from templates (a kind of service, a town, a theme, an audience) with a seeded random
generator, so the same seed always gives the same records. Names say "(synthetic)" and ids start with
``synthetic-``; ``Directory`` refuses them unless it was opened with ``allow_synthetic=True``.
"""
from __future__ import annotations

import random
from typing import Iterator

from directory.vocab import CATEGORIES, NATIONAL, known_area_ids

TOWNS = ["Aylesbury", "High Wycombe", "Chesham", "Amersham", "Marlow", "Bath", "Keynsham", "Midsomer Norton",
         "Radstock", "Gloucester", "Cheltenham", "Stroud", "Tewkesbury", "Cirencester", "Coleford", "Scunthorpe",
         "Brigg", "Barton-upon-Humber", "Epworth", "Winterton"]
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
DAYSETS = ["MO,TU,WE,TH,FR", "MO,WE,FR", "TU,TH", "SA", "MO,TU,WE,TH,FR,SA,SU"]


def generate(n: int, seed: int = 7) -> Iterator[dict]:
    rng = random.Random(seed)
    areas = list(known_area_ids())
    categories = [c for c in THEMES if c in CATEGORIES]
    for i in range(n):
        category = rng.choice(categories)
        theme = rng.choice(THEMES[category])
        kind = rng.choice(KINDS)
        town = rng.choice(TOWNS)
        audience, low, high = rng.choice(AUDIENCES)
        area = NATIONAL if rng.random() < 0.08 else rng.choice(areas)
        free = rng.random() < 0.7
        start = rng.choice(["08:30", "09:00", "09:30", "10:00", "13:00"])
        end = rng.choice(["12:00", "15:00", "16:30", "17:00", "20:00"])
        extra = rng.sample(categories, k=rng.choice([0, 0, 1]))
        sid = f"synthetic-{seed}-{i:06d}"
        yield {
            "id": sid,
            "name": f"{town} {theme} {kind} (synthetic {i})",
            "description": (
                f"A made-up {kind} in {town} about {theme} for {audience}. It offers friendly {theme} sessions, "
                f"advice and signposting, and links families with other local help. Synthetic record {i} for tests."
            ),
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
