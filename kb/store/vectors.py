"""VectorFile: rows of an index version's vectors.npy read by position with pread."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np


class VectorFile:
    """Rows of `vectors.npy` read with pread, by position: a random read of a few rows stays a few pages.

    A memory map of the same file kept most of it resident after a hundred queries at 10^6 rows (this
    kernel maps large page-cache chunks on every random access): 1,312 of 1,465 MiB, BENCHMARKS.md."""

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            self._offset = f.tell()
        if fortran or len(shape) != 2:
            raise ValueError(f"expected a C-ordered 2-d array, got shape {shape}")
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self.ndim = 2
        self._row_bytes = self.shape[1] * self.dtype.itemsize
        if path.stat().st_size < self._offset + self.shape[0] * self._row_bytes:
            raise ValueError(f"{path} is truncated")
        self._fd = os.open(path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: int | np.ndarray | Sequence[int]) -> np.ndarray:
        if isinstance(rows, (int, np.integer)):
            return self[[int(rows)]][0]
        ids: list[int] = np.asarray(rows, dtype=np.int64).reshape(-1).tolist()
        if ids and (min(ids) < 0 or max(ids) >= self.shape[0]):
            raise IndexError(f"rows {min(ids)}..{max(ids)} are out of range 0..{self.shape[0] - 1}")
        # One pread per run of consecutive rows (a document's passages are adjacent), runs found in plain
        # Python: for the 40-90 rows of a search, numpy's per-call overhead costs more than the reads.
        # Measured per 40 random rows: 69-81 µs, against 104-136 µs for preadv into slices of the output.
        runs: list[list[int]] = []
        for r in ids:
            if runs and r == runs[-1][0] + runs[-1][1]:
                runs[-1][1] += 1
            else:
                runs.append([r, 1])
        rb, fd, base = self._row_bytes, self._fd, self._offset
        parts = [os.pread(fd, c * rb, base + r * rb) for r, c in runs]
        for (r, c), part in zip(runs, parts, strict=True):
            if len(part) != c * rb:
                raise OSError(f"short read from the vectors file at row {r}")
        return np.frombuffer(b"".join(parts), dtype=self.dtype).reshape(len(ids), self.shape[1])

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
