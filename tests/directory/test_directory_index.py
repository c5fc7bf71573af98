"""The search index's fast paths: FAISS exact search with a filter, the HNSW graph's shared vectors, and
the plain SQLite reader that notices another writer's import at the next search."""
from __future__ import annotations

import faiss
import numpy as np
import pytest

from directory import Directory
from directory.index import _shared_vectors, exact_search
from tests.directory.conftest import FIXTURES


def _unit(rows: int, seed: int = 3) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, 384)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("share", [1.0, 0.4, 0.01, 0.0])
def test_exact_search_with_a_filter_is_the_masked_matrix_product(share):
    vectors = _unit(3000)
    query = vectors[7] * 0.6 + vectors[8] * 0.4
    query /= np.linalg.norm(query)
    mask = None if share == 1.0 else np.random.default_rng(5).random(3000) < share
    found = exact_search(vectors, query, mask, 100)
    sims = vectors @ query
    allowed = np.arange(3000) if mask is None else np.flatnonzero(mask)
    expected = allowed[np.argsort(-sims[allowed], kind="stable")][:100]
    assert [row for row, _ in found] == expected.tolist()  # every allowed row scored, none other
    assert np.allclose([score for _, score in found], sims[expected], atol=1e-5)
    assert len(found) == min(100, allowed.size)


def test_the_hnsw_graph_and_the_catalog_share_one_copy_of_the_vectors():
    vectors = _unit(500)
    index = faiss.IndexHNSWFlat(384, 16, faiss.METRIC_INNER_PRODUCT)
    index.add(vectors)
    shared = _shared_vectors(index, vectors)
    assert shared is not vectors and np.array_equal(shared, vectors) and not np.shares_memory(shared, vectors)
    storage = faiss.downcast_index(index.storage)
    assert shared.__array_interface__["data"][0] == int(storage.get_xb())  # the graph's own storage, not a copy
    other = vectors.copy()
    other[3, 0] += 0.5
    assert _shared_vectors(index, other) is other  # if they ever differed, the catalog keeps its own


def test_another_writers_import_is_seen_at_the_next_search_and_a_closed_directory_reopens(empty):
    reader_side = Directory.open(url=empty.url, seed=False)
    assert reader_side.search("group for dads and male carers", k=1) == []
    before = reader_side.catalog()
    assert reader_side.catalog() is before  # nothing committed since: the same catalog, no reload
    empty.import_path(FIXTURES / "oruk_service.json")  # another connection (another process, in effect) writes
    assert reader_side.search("group for dads and male carers", k=1)[0]["id"] == "fixture-single-service"
    assert reader_side.catalog() is not before
    reader_side.close()
    assert reader_side.search("group for dads and male carers", k=1)[0]["id"] == "fixture-single-service"
    reader_side.close()


def test_an_hnsw_directory_searches_like_an_exact_one_and_restarts_from_its_graph(seeded, tmp_path, monkeypatch):
    import directory.index as index

    monkeypatch.setattr(index, "HNSW_THRESHOLD", 20)  # the default content (65 services) gets a graph
    url = f"sqlite:///{tmp_path / 'directory.db'}"
    first = Directory.open(url=url)
    catalog = first.catalog()
    assert catalog.hnsw is not None and not catalog.vectors.flags.writeable  # the graph's own copy, read-only
    asks = [("my toddler isn't talking yet", {"area": "gloucestershire", "age": 2}), ("help with debt", {}),
            ("young carers", {"area": "buckinghamshire"})]
    for query, filters in asks:  # 65 services: the graph finds what the exact search finds
        assert ids(first.search(query, k=5, **filters)) == ids(seeded.search(query, k=5, **filters))
    restarted = Directory.open(url=url).catalog()
    assert restarted.timings["vectors"] == 0.0 and restarted.timings["hnsw_build_seconds"] == 0.0  # read, not rebuilt
    assert "embedded" not in restarted.timings and np.array_equal(restarted.vectors, catalog.vectors)


def ids(results):
    return [r["id"] for r in results]


def _search_in_child(directory, queue):
    queue.put(ids(directory.search("young carers", area="buckinghamshire", k=3)))


def test_a_forked_worker_searches_with_its_own_connection_and_threads(seeded):
    import multiprocessing

    here = ids(seeded.search("young carers", area="buckinghamshire", k=3))  # parent's reader and pool now exist
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_search_in_child, args=(seeded, queue))
    child.start()
    child.join(120)
    assert child.exitcode == 0, "the forked search hung or failed"
    assert queue.get(timeout=5) == here
    assert ids(seeded.search("young carers", area="buckinghamshire", k=3)) == here  # the parent's are untouched
