"""The package's surface: a short ``__all__``, the parser registry, chaining, auto's order."""

from __future__ import annotations

from sentinel.sources import parse
from sentinel.sources.parse import FAMILIES, PARSERS, Parsed, auto, chain, explain
from tests.sources.parse.golden import LOGS


def test_public_surface() -> None:
    assert sorted(parse.__all__) == sorted(
        [
            "ALIASES",
            "FAMILIES",
            "NO_EVENTS",
            "OVERFLOW",
            "PARSERS",
            "STEP",
            "Parsed",
            "Parser",
            "UserParser",
            "auto",
            "canonical",
            "chain",
            "compile_parser",
            "csv_records",
            "explain",
            "load_parsers",
            "loads_parsers",
            "log_records",
            "parsers_from_node",
            "read_records",
            "trainer_state_records",
        ]
    )
    for name in parse.__all__:
        assert getattr(parse, name) is not None


def test_parsed_is_a_named_tuple_with_a_default_rank() -> None:
    p = Parsed(3, {"loss": 1.0}, {})
    assert (p.step, p.metrics, p.events, p.rank) == (3, {"loss": 1.0}, {}, None)
    step, metrics, events, rank = p
    assert (step, metrics, events, rank) == (3, {"loss": 1.0}, {}, None)


def test_explain_agrees_with_auto_on_every_golden_line() -> None:
    for path in LOGS.glob("*.log"):
        for line in path.read_text(encoding="utf-8").split("\n"):
            found = explain(line)
            assert repr(auto(line)) == repr(found[1] if found else None), line
            if found is not None:
                assert found[0] in FAMILIES


def test_registry_and_chain() -> None:
    assert PARSERS["auto"] is auto
    assert set(PARSERS) == {"auto", "kv", "hf_dict", "json", "nanogpt", "loss_scale", "epoch"}
    only_json = chain([PARSERS["json"]])
    assert only_json("loss=1") is None
    assert chain([PARSERS["json"], PARSERS["kv"]])("loss=1") is not None
