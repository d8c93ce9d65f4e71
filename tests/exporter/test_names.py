from __future__ import annotations

from sentinel.exporter.names import plan_families, train_family


def test_train_family_keeps_the_prometheus_charset() -> None:
    assert train_family("loss") == "sentinel_train_loss"
    assert train_family("train/loss") == "sentinel_train_train_loss"
    assert train_family("acc@1") == "sentinel_train_acc_1"
    assert train_family("a:b") == "sentinel_train_a_b"  # colons are for recording rules
    assert train_family("λ") == "sentinel_train__"
    assert train_family("0x") == "sentinel_train_0x"


def test_plan_groups_collisions_unchanged_name_first_and_drops_step() -> None:
    plan = plan_families(["b", "a/x", "a_x", "step", "a-x"])
    assert plan == [
        ("sentinel_train_a_x", ("a_x", "a-x", "a/x")),
        ("sentinel_train_b", ("b",)),
    ]
