"""The alias table: spellings onto the names the rule packs read, always valid identifiers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel.sources.parse.aliases import ALIASES, STEP, canonical, derive, is_fraction, spelling

DOC = Path(__file__).resolve().parents[3] / "docs" / "log-formats.md"
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("loss", "loss"),
        ("Loss", "loss"),
        ("lm loss", "loss"),
        ("train/loss", "train_loss"),
        ("train_loss", "train_loss"),
        ("val_loss", "val_loss"),
        ("eval_loss", "val_loss"),
        ("validation loss", "val_loss"),
        ("loss/val", "val_loss"),
        ("learning_rate", "lr"),
        ("LR", "lr"),
        ("lr-AdamW", "lr"),
        ("train/learning_rate", "lr"),
        ("grad norm", "grad_norm"),
        ("gradient_norm", "grad_norm"),
        ("total_norm", "grad_norm"),
        ("gnorm", "grad_norm"),
        ("train/grad_norm", "grad_norm"),
        ("loss scale", "loss_scale"),
        ("scale", "loss_scale"),
        ("Avg similarity", "similarity"),
        ("avg_similarity", "similarity"),
        ("Feature std", "feature_std"),
        ("Token norm", "token_norm"),
        ("Codebook usage", "codebook_usage"),
        ("acc", "accuracy"),
        ("top1", "accuracy"),
        ("Acc@1", "accuracy"),
        ("val/acc", "val_accuracy"),
        ("test_acc1", "test_accuracy"),
        ("WER", "wer"),
        ("avg_svd_entropy", "svd_entropy"),
        ("eff_rank", "effective_rank"),
        ("train_loss_step", "train_loss"),
        ("val_acc_epoch", "val_accuracy_epoch"),
        ("elapsed time per iteration (ms)", "elapsed_time_per_iteration_ms"),
        ("coco/bbox_mAP", "coco_bbox_map"),
        ("3d_loss", "_3d_loss"),
        ("time_per_step", "time_per_step"),
        ("step", STEP),
        ("global_step", STEP),
        ("iteration", STEP),
        ("train/global_step", STEP),
        ("v_num", ""),
        ("train", ""),
        ("손실", ""),
    ],
)
def test_canonical_names(raw: str, name: str) -> None:
    assert canonical(raw) == name


def test_every_alias_is_already_in_normal_spelling_and_maps_to_an_identifier() -> None:
    for alias, name in ALIASES.items():
        assert spelling(alias) == alias
        assert IDENTIFIER.fullmatch(name)


def test_rule_pack_metric_names_are_canonical() -> None:
    for name in ["loss", "grad_norm", "lr", "loss_scale", "similarity", "feature_std",
                 "token_norm", "codebook_usage", "diversity", "accuracy", "wer",
                 "svd_entropy", "effective_rank"]:  # fmt: skip
        assert canonical(name) == name


@given(st.text(max_size=60))
def test_canonical_is_always_an_identifier_or_nothing(raw: str) -> None:
    name = canonical(raw)
    assert name == "" or IDENTIFIER.fullmatch(name)


def test_train_loss_is_copied_to_loss_only_when_loss_is_absent() -> None:
    assert derive({"train_loss": 2.0}) == {"train_loss": 2.0, "loss": 2.0}
    assert derive({"train_loss": 2.0, "loss": 1.0}) == {"train_loss": 2.0, "loss": 1.0}
    assert derive({"val_loss": 2.0}) == {"val_loss": 2.0}


def test_fractions_include_their_prefixed_forms() -> None:
    assert is_fraction("accuracy")
    assert is_fraction("val_accuracy")
    assert is_fraction("codebook_usage")
    assert not is_fraction("mfu")
    assert not is_fraction("val_loss")


def test_the_documented_table_lists_every_alias() -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^\| `([a-z0-9_]+)` \| (.+?) \|$", text, re.MULTILINE)
    }
    by_name: dict[str, set[str]] = {}
    for alias, name in ALIASES.items():
        by_name.setdefault(name, set()).add(alias)
    for name, aliases in by_name.items():
        assert name in rows, f"docs/log-formats.md has no row for {name}"
        documented = set(re.findall(r"`([^`]+)`", rows[name]))
        assert aliases == documented, f"{name}: table {sorted(documented)} != {sorted(aliases)}"
