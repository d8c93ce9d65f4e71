"""User regex parsers: loading with positioned errors, and parsing."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sentinel.rules.problems import RuleFileError
from sentinel.sources.parse import auto, chain, compile_parser, load_parsers, loads_parsers

GOOD = """\
parsers:
  - name: encoder-diversity
    regex: 'Encoder Diversity \\(iter (?P<step>\\d+)\\): sim (?P<avg_similarity>\\S+)'
  - regex: 'val acc (?P<acc>\\S+) wer (?P<wer>\\S+)'
    prefix: val_
  - regex: '^it (?P<it>\\d+) lossA (?P<loss_a>\\S+)(?: lossB (?P<loss_b>\\S+))?'
    step: it
"""


def test_good_file_gives_working_parsers(tmp_path: Path) -> None:
    path = tmp_path / "parsers.yaml"
    path.write_text(GOOD)
    diversity, val, custom = load_parsers(path)
    assert diversity.name == "encoder-diversity"
    p = diversity("🔍 Encoder Diversity (iter 50): sim 0.7234")
    assert p is not None
    assert (p.step, p.metrics) == (50, {"similarity": 0.7234})
    p = val("epoch 3 val acc 63.87% wer nan")
    assert p is not None
    assert p.step is None
    assert p.metrics["val_accuracy"] == 0.6387
    assert math.isnan(p.metrics["val_wer"])
    p = custom("it 12 lossA 1.5")
    assert p is not None
    assert (p.step, p.metrics) == (12, {"loss_a": 1.5})
    p = custom("it 13 lossA inf lossB 2")
    assert p is not None
    assert p.metrics == {"loss_a": math.inf, "loss_b": 2.0}
    assert custom("it x lossA 1.5") is None
    assert custom("it 14 lossA abc") is None


def test_user_parsers_run_before_auto() -> None:
    (mine,) = loads_parsers("parsers:\n  - regex: 'loss=(?P<my_loss>\\S+)'\n")
    parse = chain([mine, auto])
    p = parse("loss=1.5")
    assert p is not None
    assert p.metrics == {"my_loss": 1.5}
    p = parse("iter 1: loss 2.0, time 1.0ms, mfu 1.0%")
    assert p is not None
    assert p.metrics["loss"] == 2.0


def problems(text: str) -> list[str]:
    with pytest.raises(RuleFileError) as e:
        loads_parsers(text, "p.yaml")
    return [str(p) for p in e.value.problems]


def test_a_bad_regex_is_reported_at_the_character_re_complains_about() -> None:
    (message,) = problems("parsers:\n  - regex: 'loss (?P<loss>\\S+'\n")
    assert message.startswith("p.yaml:2:")
    assert "parser.regex: does not compile: missing ), unterminated subpattern" in message
    column = int(message.split(":")[2])
    assert column == len("  - regex: '") + len("loss ") + 1


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        """\
parsers:
  - regex: 'no groups here'
  - regex: '(?P<x>\\d*)'
  - regex: 'a (?P<a>\\S+)'
    step: iter
    prefix: 'val-'
  - regex: 'b (?P<b>\\S+)'
    colour: red
  - prefix: x_
"""
    )
    text = "\n".join(found)
    assert "p.yaml:2:12: parser.regex: has no named group for a metric" in text
    assert "p.yaml:3:12: parser.regex: matches an empty line" in text
    assert "p.yaml:5:11: parser.step: the regex has no group 'iter' (its groups: a)" in text
    assert "p.yaml:6:13: parser.prefix: 'val-' makes invalid metric names" in text
    assert "p.yaml:8:5: parser: unknown key 'colour'" in text
    assert "p.yaml:9:5: parser: missing key 'regex'" in text
    assert len(found) == 6


def test_file_shape_errors() -> None:
    assert any("missing key 'parsers'" in p for p in problems("other: 1\n"))
    assert any("expected a list" in p for p in problems("parsers: 3\n"))
    assert any("YAML syntax" in p for p in problems("parsers: [\n"))
    assert loads_parsers("") == []


def test_compile_parser_raises_value_error_naming_the_problems() -> None:
    p = compile_parser(r"lr (?P<learning_rate>\S+)", name="lr")
    assert p("lr 1e-4") is not None
    with pytest.raises(ValueError, match=r"parser 'x': regex: does not compile: .*position|regex"):
        compile_parser("(?P<a>", name="x")
    with pytest.raises(ValueError, match="step: the regex has no group 'step'"):
        compile_parser(r"(?P<a>\d+)", step="step")
