"""The fast parsers give exactly what the straightforward ones gave (``reference.py``).

``auto``, ``explain``, every built-in parser and ``read_records`` are run
side by side with the reference on the golden logs, on a log from the
acceptance generator, on hypothesis lines built from format fragments, and
on runs of lines sharing one layout (dicts, ``|`` fields) with values of
every kind. Equal means equal ``repr``: NaN equals NaN, ``0.6387`` differs
from ``0.6386999999999999``, ``1`` from ``1.0``, and an exception is an
outcome like any other.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.sources.parse import (
    NO_EVENTS,
    PARSERS,
    Parsed,
    auto,
    explain,
    log_records,
    read_records,
)
from tests.sources.parse import reference
from tests.sources.parse.golden import LOGS

GEN_LOG = (
    Path(__file__).resolve().parents[3].parent / "shared" / "acceptance" / "lib" / "gen_log.py"
)


def outcome(parse: Callable[[str], object], line: str) -> str:
    try:
        return repr(parse(line))
    except Exception as e:  # noqa: BLE001 - raising is part of the behaviour compared
        return f"raises {type(e).__name__}"


def assert_same(line: str) -> None:
    assert outcome(auto, line) == outcome(reference.auto, line), line
    assert outcome(explain, line) == outcome(reference.explain, line), line
    for name, parser in PARSERS.items():
        assert outcome(parser, line) == outcome(reference.PARSERS[name], line), (name, line)


def assert_all_same(lines: Iterable[str]) -> None:
    for line in lines:
        assert_same(line)


def test_golden_logs() -> None:
    for path in sorted(LOGS.glob("*.log")):
        assert_all_same(path.read_text(encoding="utf-8").split("\n"))


@pytest.fixture(scope="module")
def mixed_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The benchmark's mixed log (every format and noise kind), 30,000 lines."""
    if not GEN_LOG.exists():
        pytest.skip(f"no generator at {GEN_LOG}")
    path = tmp_path_factory.mktemp("mixed") / "mixed.log"
    cmd = [sys.executable, str(GEN_LOG), str(path), "--lines", "30000", "--seed", "7"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return path


def test_generated_mixed_log(mixed_log: Path) -> None:
    assert_all_same(mixed_log.read_text(encoding="utf-8").split("\n"))


def test_read_records_of_the_mixed_log(mixed_log: Path) -> None:
    got = [(n, repr(p)) for n, p in read_records(mixed_log)]
    want = [(n, repr(p)) for n, p in reference.read_records(mixed_log)]
    assert len(got) > 15_000
    assert got == want


@pytest.mark.parametrize(
    "data",
    [
        b"iter 1: loss 2.0, time 1.0ms, mfu 3.0%\nnoise\r\nloss=2\rloss=3\r\n\r\nstep=4 loss=5",
        b"\r\r\n\n{'loss': 1.0, 'grad_norm': 2.0, 'learning_rate': 3.0, 'epoch': 0.5}\r\n",
        b"loss=1\xff\x00 x=2\n\xe2\x80\xa8loss=3\n",  # bad UTF-8, NUL, U+2028 inside a line
        b"Epoch 1/2 | LR: 0.1 | Val: 0.5\r\nTrain: 0.4\r\r\nVal: 0.3",  # "$" before a "\r"
        b"",
    ],
)
def test_read_records_line_endings(tmp_path: Path, data: bytes) -> None:
    for name in ("train.log", "log.json"):
        path = tmp_path / name
        path.write_bytes(data)
        got = [(n, repr(p)) for n, p in read_records(path)]
        assert got == [(n, repr(p)) for n, p in reference.read_records(path)]
    lines = data.decode("utf-8", "replace").splitlines(keepends=True)
    for parser in (None, lengths):
        got = [(n, repr(p)) for n, p in log_records(lines, parser)]
        assert got == [(n, repr(p)) for n, p in reference.log_records(lines, parser)]
    path = tmp_path / "train.log"
    got = [(n, repr(p)) for n, p in read_records(path, lengths)]
    assert got == [(n, repr(p)) for n, p in reference.read_records(path, lengths)]


def lengths(line: str) -> Parsed:
    """A parser that sees every character the line parser is given (no built-in does)."""
    return Parsed(len(line), {"length": float(len(line))}, NO_EVENTS)


@pytest.mark.parametrize(
    "line",
    [
        "loss 2.31 (2.45)",
        "loss 2.31(2.45)",
        "acc 3% (4%)",
        "acc 3%(4%)",
        "loss: 2.31 (2.45) acc 71.2% (70.1%)",
        "x 1 ( 2) y 3 (.5)",
        "Traceback (most recent call last):",
        "loss:5 lr: 1e-3 x:\t2 y:\u30003",
        "a=b=1 c= 2, d =-3, e=\tnan f=Inf g=infinity h=NaNx",
        "step 4 | loss: 2.0 | acc (%): 91.5 | lr=3e-4 | eta: 0:12:34",
        "  3%|▌          | 3/16 [00:03<00:03,  6.80it/s, loss=2.31, lr=1e-4]",
        "[Rank 3] OVERFLOW! Rank 2 Skipping step. Attempted loss scale: 2, reducing to 1",
        "[Rank 3] Overflow detected. Skipping step. Attempted loss scale: 4.0, reducing to 2.0",
        "_update_scale] Grad overflow on iteration 11 scale=5",
        "node1 NCCL INFO Channel 01/32 : loss=1",
        "x | Val:0.5",
        "Train:1.0 (R:0.5) | Val:0.5 | BEST",
        "TrainVal: 1 | x",
    ],
)
def test_known_tricky_lines(line: str) -> None:
    assert_same(line)


# The pieces real lines are made of, the characters the fast paths test for,
# and what breaks them: other whitespace, other digits, quotes, tabs, units.
FRAGMENTS = [
    *["iter ", "step ", "Epoch ", "Train: ", "Val: ", "Valid: ", "{'", '{"', "': ", '": '],
    *["'", '"', "=", ": ", ":", " | ", "|", "\t", "(", ")", "%", "%|", "[", "]", ",", ", "],
    *["{", "}", " ", "  ", "\u3000", "\x0b", "\x1c", "\u0663", "\u00b2", "\n", "\r", "e", "E"],
    *["nan", "NaN", "inf", "-inf", "Infinity", "1e-4", "42", "3.5", "-2", "0", "007", "1_0"],
    *["12.50", "4096.0", ".5", "1.", "+4", "None", "True", "tensor(", "device='cuda:0')"],
    *["loss", "lr", "learning_rate", "grad_norm", "eval_loss", "epoch", "acc", "acc (%)", "ms"],
    *["scale", " scale", "_update_scale", "loss scale", "skipped=", "lr=[", "mom=[(0.9, 0.95)]"],
    *["Rank ", "[Rank 3] ", "[Rank 0] step=5, skipped=0, lr=[", "OVERFLOW! Rank 2 Skipping step. "],
    *["Attempted loss scale: ", ", reducing to ", "Reducing dynamic loss scale from ", " to "],
    *["AMP: overflow detected, setting scale to: ", "validation loss at ", "| valid on "],
    *["NCCL INFO", "Warning: ", "Error: ", "tep ", "ter", "TE", "T", "V", "it/s", "█", "/"],
    *["step=", "iter:", "fwd_microstep: ", "| fwd_microstep: ", " (ms) ", "time ", "mfu "],
    *["train loss ", "val loss ", "wandb: Syncing run ", "Traceback (most recent call last):"],
]
CHARS = st.text(
    alphabet=st.sampled_from([*"0123456789.-+eE:=|%(){}[]'\", \tnNiIasx", "\u3000", "\u0663"]),
    max_size=12,
)
TRICKY = st.lists(st.one_of(st.sampled_from(FRAGMENTS), CHARS), max_size=24).map("".join)


@settings(max_examples=2000, deadline=None)
@given(TRICKY)
def test_fragment_lines(line: str) -> None:
    assert_same(line)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text(line: str) -> None:
    assert_same(line)


NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(-1e6, 1e6).map(lambda x: f"{x:.2f}"),
    st.sampled_from(["0.00", "1e-05", "4.9e-05", "-0.0", "nan", "NaN", "inf", "-inf", "1_000"]),
)
VALUES = st.one_of(
    NUMBERS,
    NUMBERS,
    st.sampled_from(["'adam'", "None", "True", "[1, 2]", "tensor(0.93, device='cuda:0')"]),
    st.sampled_from(["", " 1.5", "1.5 ", "1 2", "1.2.3", "\u0663.5", "12%", "x", "{'a': 1}"]),
)
KEYS = st.one_of(
    st.sampled_from(["loss", "eval_loss", "grad_norm", "learning_rate", "epoch", "step", "acc"]),
    st.sampled_from(["v_num", "train", "global_step", "eval_runtime", "a b", "", "x-y", "tep "]),
    st.text(alphabet=st.sampled_from([*"abcxyz_ :-|="]), max_size=6),
)


@settings(max_examples=300, deadline=None)
@given(
    keys=st.lists(KEYS, min_size=1, max_size=6),
    rows=st.lists(st.lists(VALUES, min_size=6, max_size=6), min_size=2, max_size=6),
    prefix=st.sampled_from(["", "[2024-05-01 12:00:05,005] [INFO] ", "step 3 ", "{", "'"]),
    quote=st.sampled_from(["'", '"']),
)
def test_runs_of_one_dict_layout(
    keys: list[str], rows: list[list[str]], prefix: str, quote: str
) -> None:
    for row in rows:
        pairs = ", ".join(f"{quote}{k}{quote}: {v}" for k, v in zip(keys, row, strict=False))
        assert_same(f"{prefix}{{{pairs}}}")


@settings(max_examples=300, deadline=None)
@given(
    keys=st.lists(KEYS, min_size=1, max_size=5),
    rows=st.lists(st.lists(VALUES, min_size=5, max_size=5), min_size=2, max_size=5),
    head=st.sampled_from(["", "[2024-05-01 12:00:05,005] [INFO] time (ms) ", " iteration 7/ 9 "]),
    gap=st.sampled_from([" ", "  ", "", "\t"]),
    end=st.sampled_from(["", " |", "|", " | valid on 'valid' subset"]),
)
def test_runs_of_one_field_layout(
    keys: list[str], rows: list[list[str]], head: str, gap: str, end: str
) -> None:
    for row in rows:
        fields = "|".join(f"{gap}{k}: {v}{gap}" for k, v in zip(keys, row, strict=False))
        assert_same(f"{head}|{fields}{end}")


@pytest.mark.parametrize(
    "rank", ["0", "7", "1023", "1024", "007", "\u0663", "99999999999999999999"]
)
def test_deepspeed_ranks(rank: str) -> None:
    assert_same(f"[Rank {rank}] step=12, skipped=0, lr=[0.0003], mom=[(0.9, 0.95)]")
    assert_same(f"step=12, skipped={rank}, lr=[{rank}]")
