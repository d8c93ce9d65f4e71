"""Noise gives nothing, and no input at all makes a parser raise."""

from __future__ import annotations

import math
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.sources.parse import PARSERS, auto, explain

# The noise kinds of the benchmark's mixed log, and their near misses.
NOISE = [
    "  3%|▌          | 3/16 [00:03<00:03,  6.80it/s]",
    "node03:4012:4012 [3] NCCL INFO Channel 03/32 :    0   1   2   3   4   5   6   7",
    "2024-05-01 12:34:56,789 - INFO - __main__ - Saving model checkpoint to /ckpt/run-7/ckpt-9",
    "/usr/local/lib/python3.11/site-packages/torch/nn/modules/module.py:1511: UserWarning: Using a "
    "non-full backward hook when the forward contains multiple autograd Nodes is deprecated.",
    "[2024-05-01 12:00:13,013] [INFO] [fused_optimizer.py:344:_update_scale] Grad overflow on "
    "iteration 13",
    "iter 7: saving checkpoint to out",
    "step 29: lr 0.00060, tokens/s 53933",
    "wandb: Syncing run glorious-sun-14",
    "",
    "Traceback (most recent call last):",
    '  File "/home/user/train.py", line 311, in <module>',
    "RuntimeError: CUDA error: an illegal memory access was encountered (error code: 700)",
    "2024-05-01 12:00:24",
    "12:00:24",
    "[2024-05-01 12:00:24,024]",
    "ETA: 0:12:34 | elapsed: 01:02:03",
    "Version: 2.1.0 | Date: 2024-05-01 | Host: node-03:29500",
    "status=info mode=train device=cuda:0",
    "=" * 60,
]


@pytest.mark.parametrize("line", NOISE)
def test_noise_lines_give_no_sample(line: str) -> None:
    assert auto(line) is None
    assert explain(line) is None


def test_accepted_near_noise_of_the_mixed_log() -> None:
    """Lines gen_log.py files under noise that sentinel reads on purpose (docs/log-formats.md)."""
    eval_dict = (
        "{'eval_loss': 2.1234, 'eval_runtime': 12.345, 'eval_samples_per_second': 123.45, "
        "'eval_steps_per_second': 12.34, 'epoch': 0.05}"
    )
    timers = (
        "[2024-05-01 12:00:05,005] [INFO] [logging.py:96:log_dist] [Rank 0] time (ms) | "
        "fwd_microstep: 52.12 | bwd_microstep: 120.00 | step_microstep: 12.50"
    )
    p = auto(eval_dict)
    assert p is not None
    assert p.metrics["val_loss"] == 2.1234
    p = auto(timers)
    assert p is not None
    assert p.metrics == {"fwd_microstep": 52.12, "bwd_microstep": 120.0, "step_microstep": 12.5}


LINE_CHARS = st.text(
    alphabet=st.sampled_from(
        [*string.printable.replace("\n", ""), "█", "▌", "✓", "é", "손", "\x00", "\ufffd"]
    ),
    max_size=200,
)
FRAGMENTS = st.sampled_from(
    [
        "iter ",
        "step ",
        "Epoch ",
        "Train: ",
        "Val: ",
        "{'",
        '{"',
        "': ",
        '": ',
        "=",
        ": ",
        " | ",
        "\t",
        "(",
        ")",
        "%",
        "nan",
        "inf",
        "-inf",
        "1e-4",
        "42",
        "3.5",
        "loss",
        "scale",
        "skipped=",
        "lr=[",
        "Rank ",
        "OVERFLOW! ",
        "Attempted loss scale: ",
        "reducing to ",
        "validation loss at ",
        "| valid on ",
        "%|",
        "tensor(",
        "[",
        "]",
        ",",
        " ",
    ]
)
TRICKY = st.lists(st.one_of(FRAGMENTS, LINE_CHARS), max_size=30).map("".join)


@settings(max_examples=1500, deadline=None)
@given(TRICKY)
def test_no_parser_raises_on_any_line(line: str) -> None:
    for parser in PARSERS.values():
        p = parser(line)
        if p is not None:
            assert p.metrics
            assert all(isinstance(v, float) for v in p.metrics.values())
            assert all(k.isidentifier() and k.isascii() for k in p.metrics)
    found = explain(line)
    assert repr(found[1] if found else None) == repr(auto(line))


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_unicode_never_raises(line: str) -> None:
    line = line.replace("\n", "")
    found = explain(line)
    assert repr(auto(line)) == repr(found[1] if found else None)


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ('{"loss": ' + "1" * 400 + "}", math.inf),
        ('{"loss": -' + "1" * 400 + ', "step": 3}', -math.inf),
        ("{'loss': " + "1" * 400 + "}", math.inf),
        ("loss=" + "1" * 400, math.inf),
    ],
)
def test_a_number_beyond_a_double_is_infinite_not_an_error(line: str, value: float) -> None:
    p = auto(line)
    assert p is not None and p.metrics["loss"] == value
