"""A finished file's records as columns: what replay evaluates rules over.

A large log is cut at newlines into pieces parsed by worker processes (the
parsers hold no state, so a line parses the same wherever it falls); each
piece comes back as NumPy columns — line numbers, steps, ranks, and per metric
the records carrying it and their values — and the pieces are joined in file
order. Line numbers and steps come out exactly as a single pass gives them: a
line is what ``open(newline="")`` yields (``\\r`` splits too), a record
without a step takes the last step seen in the file (0 before any).
"""

from __future__ import annotations

import io
import itertools
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sentinel.model import JobKey
from sentinel.rules.batch import Frame
from sentinel.sources.parse import Parsed, Parser, auto, read_records

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

PIECE_BYTES = 2 << 20  # a piece per worker task: small enough that no worker idles long at the end
PARALLEL_FROM = 16 << 20
_INT64 = 2**63 - 1  # below this a worker pool costs more than it saves


@dataclass
class Columns:
    """The records of one file (or piece): per record line, step (-1: none) and rank; metrics."""

    lines: I64
    steps: I64
    ranks: I64
    metrics: dict[str, tuple[I64, F64]]  # name -> (record indices, values)
    line_count: int = 0  # lines read, records or not

    def __len__(self) -> int:
        return len(self.lines)

    def record_steps(self) -> I64:
        """Each record's step: its own, else the last one before it in the file (0 before any)."""
        n = len(self)
        if not n:
            return self.steps
        last = np.maximum.accumulate(np.where(self.steps >= 0, np.arange(n), -1))
        return np.where(last >= 0, self.steps[np.maximum(last, 0)], 0)

    def frames(self, job: str, passive: frozenset[str]) -> Iterator[tuple[JobKey, Frame, I64]]:
        """One ``Frame`` per (job, rank), with the file records its samples came from.

        A sample's time is its record's index in the file, counted from 1;
        its step the record's own, else the last one before it (0 before any).
        """
        n = len(self)
        steps = self.record_steps()
        times = np.arange(1, n + 1, dtype=np.float64)
        alive = np.ones(n, dtype=bool)
        if passive & self.metrics.keys():
            counts = np.zeros(n, dtype=np.int64)
            passive_counts = np.zeros(n, dtype=np.int64)
            for name, (idx, _) in self.metrics.items():
                counts[idx] += 1
                if name in passive:
                    passive_counts[idx] += 1
            alive = counts > passive_counts
        ranks = np.unique(self.ranks).tolist()
        if not ranks:
            return
        if len(ranks) == 1:  # the usual file: one key, the columns as they are
            live_at = np.maximum.accumulate(np.where(alive, times, -np.inf))
            frame = Frame(times, steps, self.metrics, live=live_at)
            yield JobKey(job, int(ranks[0])), frame, np.arange(n)
            return
        # Several ranks: each record's index within its rank, and each column split by rank.
        order = np.argsort(self.ranks, kind="stable")
        starts = np.searchsorted(self.ranks[order], ranks)
        local = np.empty(n, dtype=np.int64)
        local[order] = np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))
        split: dict[str, tuple[I64, F64, I64]] = {}
        for name, (idx, vals) in self.metrics.items():
            r = self.ranks[idx]
            o = np.argsort(r, kind="stable")
            split[name] = (idx[o], vals[o], np.searchsorted(r[o], ranks, "left"))
        for i, rank in enumerate(ranks):
            a, b = int(starts[i]), int(starts[i + 1]) if i + 1 < len(ranks) else n
            records = order[a:b]
            columns: dict[str, tuple[I64, F64]] = {}
            for name, (idx, vals, cuts) in split.items():
                lo = int(cuts[i])
                hi = int(cuts[i + 1]) if i + 1 < len(ranks) else len(idx)
                if hi > lo:
                    columns[name] = (local[idx[lo:hi]], vals[lo:hi])
            t = times[records]
            live_at = np.maximum.accumulate(np.where(alive[records], t, -np.inf))
            yield (
                JobKey(job, int(rank)),
                Frame(t, steps[records], columns, live=live_at),
                records,
            )


class _Collector:
    """Records in, columns out; records with the same metric names share one value table."""

    def __init__(self) -> None:
        self.lines: list[int] = []
        self.steps: list[int | None] = []
        self.ranks: list[int | None] = []
        # metric names -> (record indices, their values flattened row by row)
        self.shapes: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}

    def add_all(self, records: Iterable[tuple[int, Parsed]]) -> None:
        # The per-record cost of replay: locals and bound methods, one dict lookup.
        add_line, add_step, add_rank = self.lines.append, self.steps.append, self.ranks.append
        shapes = self.shapes
        get = shapes.get
        n = len(self.lines)
        for number, (step, metrics, _, rank) in records:
            shape = tuple(metrics)
            table = get(shape)
            if table is None:
                table = shapes[shape] = ([], [])
            table[0].append(n)
            table[1].extend(metrics.values())
            n += 1
            add_line(number)
            add_step(step)
            add_rank(rank)

    def parse_lines(self, lines: Iterable[str], parse: Parser) -> int:
        """``add_all`` of what ``parse`` finds in ``lines`` (no line ends), in one loop.

        Returns the line count.
        """
        add_line, add_step, add_rank = self.lines.append, self.steps.append, self.ranks.append
        shapes = self.shapes
        get = shapes.get
        n = len(self.lines)
        count = 0
        for count, line in enumerate(lines, 1):
            p = parse(line)
            if p is None:
                continue
            step, metrics, _, rank = p
            shape = tuple(metrics)
            table = get(shape)
            if table is None:
                table = shapes[shape] = ([], [])
            table[0].append(n)
            table[1].extend(metrics.values())
            n += 1
            add_line(count)
            add_step(step)
            add_rank(rank)
        return count

    def columns(self, line_count: int) -> Columns:
        parts: dict[str, list[tuple[I64, F64]]] = {}
        for shape, (idx, flat) in self.shapes.items():
            at = np.array(idx, dtype=np.int64)
            table = np.array(flat, dtype=np.float64).reshape(len(idx), len(shape))
            for j, name in enumerate(shape):
                parts.setdefault(name, []).append((at, table[:, j]))
        return Columns(
            np.array(self.lines, dtype=np.int64),
            # A step or rank beyond int64 is no step or rank a trainer printed: none.
            np.array([-1 if s is None or s > _INT64 else s for s in self.steps], dtype=np.int64),
            np.array([r if r and r <= _INT64 else 0 for r in self.ranks], dtype=np.int64),
            {name: _merge(p) for name, p in parts.items()},
            line_count,
        )


def _merge(parts: list[tuple[I64, F64]]) -> tuple[I64, F64]:
    if len(parts) == 1:
        return parts[0]
    idx = np.concatenate([p[0] for p in parts])
    vals = np.concatenate([p[1] for p in parts])
    order = np.argsort(idx, kind="stable")
    return idx[order], vals[order]


def _piece(path: str, start: int, end: int) -> Columns:
    """Parse bytes [start, end) of ``path`` (both at line starts)."""
    with open(path, "rb") as f:
        f.seek(start)
        text = f.read(end - start).decode("utf-8", errors="replace")
    c = _Collector()
    return c.columns(c.parse_lines(_split(text), _PIECE_PARSER))


def _split(text: str) -> list[str]:
    """The lines ``open(newline="")`` yields, without their ends."""
    if "\r" in text:  # \r and \r\n end lines too: the slow, exact way
        return [line.rstrip("\r\n") for line in io.StringIO(text, newline="")]
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the text ended with a newline (or was empty)
    return lines


_PIECE_PARSER: Parser = auto  # set before the pool forks: workers inherit it


def _cuts(path: Path, size: int, pieces: int) -> list[tuple[int, int]]:
    """Byte ranges of about ``size / pieces`` each, cut just after a newline."""
    bounds = [0]
    with path.open("rb") as f:
        for i in range(1, pieces):
            f.seek(max(size * i // pieces, bounds[-1]))
            f.readline()  # to the end of the line we landed in
            at = f.tell()
            if at >= size:
                break
            if at > bounds[-1]:
                bounds.append(at)
    bounds.append(size)
    return list(itertools.pairwise(bounds))


def _join(pieces: list[Columns]) -> Columns:
    offsets = np.cumsum([0] + [len(p) for p in pieces])
    line_offsets = np.cumsum([0] + [p.line_count for p in pieces])
    names = {n for p in pieces for n in p.metrics}
    metrics = {}
    for name in names:
        got = [
            (p.metrics[name][0] + offsets[i], p.metrics[name][1])
            for i, p in enumerate(pieces)
            if name in p.metrics
        ]
        metrics[name] = (
            np.concatenate([g[0] for g in got]),
            np.concatenate([g[1] for g in got]),
        )
    return Columns(
        np.concatenate([p.lines + line_offsets[i] for i, p in enumerate(pieces)]),
        np.concatenate([p.steps for p in pieces]),
        np.concatenate([p.ranks for p in pieces]),
        metrics,
        int(line_offsets[-1]),
    )


def workers() -> int:
    """How many CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def read_columns(
    path: Path,
    parser: Parser | None = None,
    *,
    jobs: int = 1,
    progress: Callable[[int, int], None] | None = None,
    parallel_from: int = PARALLEL_FROM,
    piece_bytes: int = PIECE_BYTES,
) -> Columns:
    """Every record of ``path`` (log, ``metrics.csv``, ``trainer_state.json``) as columns.

    A plain log of at least ``parallel_from`` bytes is parsed by ``jobs``
    processes, in pieces of about ``piece_bytes``. ``progress(done, total)``
    is told the bytes parsed so far.
    """
    global _PIECE_PARSER  # noqa: PLW0603 - the forked workers read it
    size = path.stat().st_size
    if path.suffix.lower() in (".csv", ".json"):
        c = _Collector()
        c.add_all(read_records(path, parser))
        if progress is not None:
            progress(size, size)
        return c.columns(0)
    # Pieces even in one process: Python lists live for one piece only, then NumPy holds it.
    cuts = _cuts(path, size, max(jobs, -(-size // piece_bytes)))
    _PIECE_PARSER = parser or auto
    done = 0
    results: dict[int, Columns] = {}
    if jobs <= 1 or size < parallel_from:
        for i, (a, b) in enumerate(cuts):
            results[i] = _piece(str(path), a, b)
            done += b - a
            if progress is not None:
                progress(done, size)
    else:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = {pool.submit(_piece, str(path), a, b): i for i, (a, b) in enumerate(cuts)}
            for fut in as_completed(futures):
                i = futures[fut]
                results[i] = fut.result()
                done += cuts[i][1] - cuts[i][0]
                if progress is not None:
                    progress(done, size)
    pieces = [results[i] for i in range(len(cuts))]
    return pieces[0] if len(pieces) == 1 else _join(pieces)


__all__ = ["Columns", "read_columns", "workers"]
