"""Worker: a synthetic corpus of n passages, its tokens and vectors composed, the index written (timed by phase)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bench import corpus as synthetic
from bench.common import MODEL_ID, K, proc_status
from kb import glossary, tokens
from kb.store import MANIFEST, write_index

# write_index's stages, named by the phase that each one ends
PHASES = {"tmp-created": "setup", "vectors": "vectors.npy", "dense": "faiss (train+add+write)", "bm25": "bm25",
          "sqlite": "sqlite", "manifest": "checksums+manifest", "renamed": "publish"}


def run(a: dict[str, Any]) -> dict[str, Any]:
    """Generate n passages, compose their tokens and vectors, write the index (timed by phase), exact top-k."""
    n, work, root = int(a["n"]), Path(a["work"]), Path(a["index"])
    qv = np.load(work / "query_vectors.npy")
    out: dict[str, Any] = {"n": n}
    corpus, toks, vectors = synthetic_inputs(a, out)
    folder = _timed_write(root, corpus, vectors, toks, a.get("seed", 0), out)
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    out["dense"] = manifest["dense"]
    out["bm25_vocabulary"] = manifest["bm25"].get("vocabulary")
    files: dict[str, int] = {}
    for p in folder.rglob("*"):
        if p.is_file():
            part = p.relative_to(folder).parts[0]
            files[part] = files.get(part, 0) + p.stat().st_size
    out["disk_bytes"] = files
    out["disk_bytes_total"] = sum(files.values())
    t0 = time.perf_counter()
    top, truth = faiss.knn(qv, vectors, 100, metric=faiss.METRIC_INNER_PRODUCT)
    truth = truth[:, :K]
    out["exact_knn_s"] = time.perf_counter() - t0
    # how bunched the exact neighbours are (why approximate search finds these vectors hard)
    out["exact_score_gaps"] = {"top1_top10": float(np.median(top[:, 0] - top[:, K - 1])),
                               "top10_top100": float(np.median(top[:, K - 1] - top[:, 99]))}
    np.save(Path(a["truth"]), truth)
    out["peak_rss_bytes"] = proc_status()["VmHWM"]
    return out


def synthetic_inputs(a: dict[str, Any], out: dict[str, Any]
                     ) -> tuple[synthetic.SyntheticCorpus, list[list[str]], np.ndarray]:
    """The corpus of a["n"] passages from the material in a["work"], its tokens and vectors (deterministic for
    a["seed"]: every worker given the same arguments gets the same passages); timings go into out."""
    n, work, seed = int(a["n"]), Path(a["work"]), int(a.get("seed", 0))
    m = json.loads((work / "material.json").read_text(encoding="utf-8"))
    mat = synthetic.Material(m["sentences"], m["kinds"], {k: [tuple(p) for p in v] for k, v in m["paths"].items()})
    sv = np.load(work / "sentence_vectors.npy")
    t0 = time.perf_counter()
    corpus = synthetic.generate(mat, n, seed=seed)
    out["generate_s"] = time.perf_counter() - t0
    out["reports"], out["localities"] = len(corpus.reports), corpus.localities
    toks = _tokens(mat, corpus, bool(a.get("tokenize_directly")), out)
    t0 = time.perf_counter()
    vectors = synthetic.compose_vectors(corpus, sv, seed=seed)
    out["vectors_s"] = time.perf_counter() - t0
    return corpus, toks, vectors


def _tokens(mat: Any, corpus: Any, tokenize_directly: bool, out: dict[str, Any]) -> list[list[str]]:
    """BM25 tokens composed per sentence and path; optionally checked against tokenizing every passage."""
    glossary.register_domain_words()  # as the build does: domain terms stay whole words
    t0 = time.perf_counter()
    st = tokens.tokenize_many(mat.sentences)
    pt = [tokens.tokenize(" › ".join(p) + "\n") if p else [] for p in corpus.paths]
    toks = synthetic.compose_tokens(corpus, st, pt)
    out["tokens_compose_s"] = time.perf_counter() - t0
    out["tokens_per_passage"] = sum(map(len, toks)) / max(1, len(corpus.chunks))
    if tokenize_directly:
        texts = [c.embed_text() for c in corpus.chunks]
        t0 = time.perf_counter()
        direct = tokens.tokenize_many(texts)
        secs = time.perf_counter() - t0
        out["tokenize_direct"] = {
            "passages": len(texts),
            "seconds": secs,
            "passages_per_s": len(texts) / secs,
            "tokens_per_s": sum(map(len, direct)) / secs,
            "chars_per_s": sum(map(len, texts)) / secs,
            "mismatches_vs_composed": sum(x != y for x, y in zip(direct, toks, strict=True)),
        }
        del texts, direct
    return toks


def _timed_write(root: Path, corpus: Any, vectors: np.ndarray, toks: list[list[str]], seed: Any,
                 out: dict[str, Any]) -> Path:
    """write_index with the time between its stages recorded as phases (kb.store's on_stage callback)."""
    stamps: list[tuple[str, float]] = []

    def stamp(stage: str) -> None:
        stamps.append((stage, time.perf_counter()))

    shutil.rmtree(root, ignore_errors=True)
    out["rss_before_write_bytes"] = proc_status()["VmRSS"]
    t0 = time.perf_counter()
    folder = write_index(root, corpus.reports, corpus.chunks, vectors, toks, MODEL_ID,
                         {"synthetic": True, "seed": seed}, on_stage=stamp)
    total = time.perf_counter() - t0
    phases: dict[str, float] = {}
    prev = t0
    for stage, t in stamps:
        phases[PHASES.get(stage, stage)] = t - prev
        prev = t
    phases["publish"] = phases.get("publish", 0.0) + (t0 + total - prev)
    out["write_index_s"] = total
    out["write_phases_s"] = phases
    return folder
