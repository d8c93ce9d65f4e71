"""Each family on its own: the lines it reads, the spellings of numbers, NaN and inf."""

from __future__ import annotations

import math

import pytest

from sentinel.sources.parse import (
    OVERFLOW,
    Parsed,
    auto,
    epoch,
    explain,
    jsonl,
    kv,
    lossscale,
    nanogpt,
    pydict,
)


def metrics(line: str) -> dict[str, float]:
    p = auto(line)
    assert p is not None, line
    return p.metrics


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("nan", math.nan),
        ("NaN", math.nan),
        ("inf", math.inf),
        ("-inf", -math.inf),
        ("Infinity", math.inf),
        ("1e-4", 1e-4),
        ("4.9e-05", 4.9e-05),
        ("2.345E+00", 2.345),
        ("-3", -3.0),
    ],
)
def test_every_family_reads_every_spelling_of_a_number(text: str, value: float) -> None:
    lines = [
        f"iter 7: loss {text}, time 10.00ms, mfu 30.00%",
        f"{{'loss': {text}, 'grad_norm': 1.0, 'learning_rate': 0.1, 'epoch': 0.5}}",
        f"{{'eval_loss': {text}, 'epoch': 0.5}}",
        f'{{"step": 3, "loss": "{text}"}}',
        f'{{"step": 3, "loss": {text}}}',  # bare nan/inf: not JSON, read by the dict scanner
        f"step 3: loss={text}, lr=0.1",
        f" iteration 3/ 100 | lm loss: {text} | loss scale: 1.0 |",
        f"loss: {text}",
    ]
    for line in lines:
        got = metrics(line)
        assert same(got["loss"] if "loss" in got else got["val_loss"], value), line


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_json_reads_bare_non_finite_tokens(token: str) -> None:
    p = jsonl.parse(f'{{"step": 1, "loss": {token}}}')
    assert p is not None
    assert not math.isfinite(p.metrics["loss"])


def test_a_nan_loss_is_a_sample_in_every_built_in_format() -> None:
    for line in [
        "iter 2010: loss nan, time 411.70ms, mfu 29.90%",
        "step 2500: train loss nan, val loss 3.1",
        "{'loss': nan, 'grad_norm': 1.0, 'learning_rate': 0.1, 'epoch': 0.5}",
        '{"loss": NaN}',
        "loss=nan",
        "Epoch 0003/0010 | LR: 1e-4 | Train: nan (R:nan C:0.1) | Val: 0.5 (R:0.4 C:0.1)",
    ]:
        assert math.isnan(metrics(line)["loss"]), line


def test_nanogpt_lines() -> None:
    p = nanogpt.parse("iter 1234: loss 2.3456, time 12.34ms, mfu 41.20%")
    assert p == Parsed(1234, {"loss": 2.3456, "iter_time_ms": 12.34, "mfu": 41.2}, {})
    p = nanogpt.parse("step 2000: train loss 2.1234, val loss 2.2345")
    assert p is not None
    assert (p.step, p.metrics) == (2000, {"train_loss": 2.1234, "val_loss": 2.2345, "loss": 2.1234})
    assert nanogpt.parse("iter 500: saving checkpoint to out") is None
    assert nanogpt.parse("step 5: lr 0.0006, tokens/s 1234") is None
    assert nanogpt.parse("iter 3: loss abc, time 1ms, mfu 1%") is None


def test_hf_dict_general_path_and_tensor_values() -> None:
    p = pydict.parse("{'loss': 2.5, 'grad_norm': tensor(0.93, device='cuda:0'), 'epoch': 1.0}")
    assert p is not None
    assert p.metrics == {"loss": 2.5, "grad_norm": 0.93, "epoch": 1.0}
    p = pydict.parse("{'eval_loss': 1.9, 'eval_model': 'gpt2', 'flag': True, 'x': None}")
    assert p is not None
    assert p.metrics == {"val_loss": 1.9}
    assert pydict.parse("{'name': 'run-7'}") is None


def test_json_flattens_objects_and_prefers_the_global_step() -> None:
    p = jsonl.parse('{"iter": 3, "step": 50, "train": {"loss": 2.0, "acc": 0.5}, "ok": true}')
    assert p is not None
    assert p.step == 50
    assert p.metrics == {"train_loss": 2.0, "train_accuracy": 0.5, "loss": 2.0}
    assert jsonl.parse('{"step": 1, "loss": 2.0') is None
    assert jsonl.parse("[1, 2, 3]") is None
    assert jsonl.parse('{"message": "done"}') is None


def test_loss_scale_lines_give_the_new_scale_and_one_overflow() -> None:
    p = lossscale.parse(
        "[Rank 3] OVERFLOW! Rank 3 Skipping step. Attempted loss scale: 65536, reducing to 32768"
    )
    assert p == Parsed(None, {"loss_scale": 32768.0}, OVERFLOW, 3)
    p = lossscale.parse(
        "Gradient overflow.  Skipping step, loss scaler 0 reducing loss scale to 16384.0"
    )
    assert p == Parsed(None, {"loss_scale": 16384.0}, OVERFLOW, None)
    p = lossscale.parse(
        "NOTE: gradient overflow detected, ignoring gradient, setting loss scale to: 64.0"
    )
    assert p == Parsed(None, {"loss_scale": 64.0}, OVERFLOW, None)
    p = lossscale.parse("Reducing dynamic loss scale from 65536.0 to 32768.0")
    assert p == Parsed(None, {"loss_scale": 32768.0}, {}, None)
    assert lossscale.parse("Grad overflow on iteration 11") is None


def test_deepspeed_step_line() -> None:
    p = lossscale.parse("[Rank 0] step=1200, skipped=3, lr=[0.00029], mom=[(0.9, 0.95)]")
    assert p == Parsed(1200, {"lr": 0.00029, "skipped_steps": 3.0}, {}, 0)


def test_seed_004_epoch_line() -> None:
    line = (
        "Epoch 0042/2000 | LR: 9.51e-05 | Train: 0.123456 (R:0.120000 C:0.034560) | "
        "Val: 0.098765 (R:0.1 C:0.02) ✓ BEST"
    )
    p = epoch.parse(line)
    assert p is not None
    assert p.step == 42
    assert p.metrics == {
        "lr": 9.51e-05,
        "train_loss": 0.123456,
        "train_r": 0.12,
        "train_c": 0.03456,
        "val_loss": 0.098765,
        "val_r": 0.1,
        "val_c": 0.02,
        "loss": 0.123456,
        "best": 1.0,
    }
    assert epoch.parse("Train: 0 [  50/1251 (  4%)]  Loss: 6.912 (6.93)") is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("grad_norm=3.21, scale=65536.0", {"grad_norm": 3.21, "loss_scale": 65536.0}),
        ("Avg similarity: 0.7234 (1.0=identical, 0.0=orthogonal)", {"similarity": 0.7234}),
        ("Feature std: 0.1456 (0.0=collapsed)", {"feature_std": 0.1456}),
        ("mfu 41.2% | loss 2.0", {"mfu": 41.2, "loss": 2.0}),
        ("mfu: 41.2%", {"mfu": 41.2}),
        ("acc: 63.87%", {"accuracy": 0.6387}),
        ("acc (%): 63.87 | loss: 1.0", {"accuracy": 0.6387, "loss": 1.0}),
        ("Codebook usage: 18.5% (189/1024)", {"codebook_usage": 0.185}),
        ("loss: 2.31 (2.45)", {"loss": 2.31, "loss_avg": 2.45}),
        ("loss 2.31 (2.45)", {"loss": 2.31, "loss_avg": 2.45}),
        ("time: 0.322s, lr: 1.0e-06", {"time": 0.322, "lr": 1e-06}),
        ("epoch: 3/100, loss: 1.5", {"epoch": 3.0, "loss": 1.5}),
        ("eta: 0:12:34  loss: 1.5", {"loss": 1.5}),
        (
            "lm loss: 2.345E+00 | loss scale: 4096.0 | grad norm: 0.345",
            {"loss": 2.345, "loss_scale": 4096.0, "grad_norm": 0.345},
        ),
        ("train/loss=1.0\tval/loss=2.0", {"train_loss": 1.0, "val_loss": 2.0, "loss": 1.0}),
    ],
)
def test_key_value_lines(line: str, expected: dict[str, float]) -> None:
    assert kv.parse(line) is not None
    assert metrics(line) == expected


@pytest.mark.parametrize(
    ("line", "step"),
    [
        ("step=7 loss=1.0", 7),
        ("iter 5: loss=2.3, lr=1e-4", 5),
        ("[Step 12] loss: 1.0", 12),
        (" iteration      100/  500000 | lm loss: 2.0 |", 100),
        ("global_step: 9, loss: 1.0", 9),
        ("loss: 1.0", None),
    ],
)
def test_key_value_steps(line: str, step: int | None) -> None:
    p = auto(line)
    assert p is not None
    assert p.step == step
    assert "step" not in p.metrics


def test_explain_names_the_family() -> None:
    assert explain("iter 1: loss 1.0, time 1.0ms, mfu 1.0%") is not None
    assert [explain(line)[0] for line in ("loss=1", '{"loss": 1}')] == ["kv", "json"]  # type: ignore[index]
