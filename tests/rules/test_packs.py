"""The shipped packs load, every test beside them passes, every rule is tested both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel.model import AlertState
from sentinel.rules import builtin_packs, load_files
from sentinel.rules.ruletest import Suite, load_test_file, run_case

ROOT = Path(__file__).resolve().parents[2]
TESTS = sorted((ROOT / "rules" / "tests").glob("*.yaml"))
# Packs owned by other work (with tests of their own elsewhere) are only loaded here.
TESTED_PACKS = {"encoder", "generation", "liveness", "progress", "stability"}


def suites() -> list[Suite]:
    return [load_test_file(p) for p in TESTS]


def test_every_shipped_pack_loads() -> None:
    packs = builtin_packs()
    assert {p.stem for p in packs} >= TESTED_PACKS
    assert len(load_files(packs)) >= 19
    ours = load_files(ROOT / "rules" / f"{name}.yaml" for name in sorted(TESTED_PACKS))
    assert all(r.severity in ("critical", "warning", "info") for r in ours.rules)
    assert all({"summary", "advice"} <= set(r.annotations) for r in ours.rules)


@pytest.mark.parametrize("path", TESTS, ids=[p.stem for p in TESTS])
def test_pack_tests_pass(path: Path) -> None:
    suite = load_test_file(path)
    assert suite.cases
    failures = {c.name: run_case(suite.rules, c) for c in suite.cases}
    assert {n: f for n, f in failures.items() if f} == {}


def test_every_rule_fires_in_one_test_and_stays_quiet_in_another() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for suite in suites():
        for case in suite.cases:
            fired |= {e.alert for e in case.expect if e.state is AlertState.FIRING}
            quiet |= set(case.quiet)
    rules = load_files(ROOT / "rules" / f"{name}.yaml" for name in sorted(TESTED_PACKS))
    names = {r.name for r in rules.rules}
    assert names - fired == set(), "rules no test fires"
    assert names - quiet == set(), "rules no test shows quiet"


def test_the_seed_thresholds_are_encoded() -> None:
    rules = {r.name: r for r in load_files(builtin_packs()).rules}
    assert rules["EncoderCollapse"].expr.source == "similarity > 0.95 and feature_std < 0.01"
    assert [a.name for a in rules["EncoderCollapse"].actions] == ["notify", "stop"]
    assert [a.name for a in rules["NanLoss"].actions] == ["notify", "stop"]
    assert rules["CodebookUsageLow"].expr.source == "codebook_usage < 0.2"
    assert rules["ModeCollapse"].expr.source == "diversity < 0.5"
    assert rules["GradNormHigh"].expr.source == "grad_norm > 10"
    assert rules["DeadTrainer"].expr.source == "trainer_alive == 0"
    assert "age() > 300" in rules["HungTrainer"].expr.source
