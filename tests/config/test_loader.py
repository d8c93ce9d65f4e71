"""sentinel.yaml: typed values, and every mistake at its file:line:column."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel.config import Config, load_config
from sentinel.rules.problems import RuleFileError


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "sentinel.yaml"
    p.write_text(text)
    return p


def test_a_full_config_is_read_into_typed_values(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        """\
run_dir: /dev/shm/elsewhere
tick: 100ms
rules: [extra/*.yaml, /abs/rules.yaml]
builtin_packs: false
exporter: {listen: "0.0.0.0:9500"}
notify: {urls: ["json://127.0.0.1:1/"], repeat: 1h30m}
stop: {grace: 2m, kill_after: 30s}
journal: state/journal.db
dry_run: true
forget_after: 2h
""",
    )
    c = load_config(p)
    assert c.run_dir == Path("/dev/shm/elsewhere")
    assert c.tick == 0.1
    assert c.rule_files == (str(tmp_path / "extra/*.yaml"), "/abs/rules.yaml")
    assert c.builtin_packs is False and c.dry_run is True
    assert (c.exporter.host, c.exporter.port, c.exporter.enabled) == ("0.0.0.0", 9500, True)
    assert c.notify.urls == ("json://127.0.0.1:1/",) and c.notify.repeat == 5400.0
    assert (c.stop.grace, c.stop.kill_after) == (120.0, 30.0)
    assert c.journal == tmp_path / "state/journal.db"
    assert c.forget_after == 7200.0


@pytest.mark.parametrize("repeat", ["0s", "never"])
def test_zero_means_zero_never_the_default(tmp_path: Path, repeat: str) -> None:
    c = load_config(_write(tmp_path, f"notify: {{repeat: {repeat}}}\nstop: {{grace: 0s}}\n"))
    assert c.notify.repeat == 0.0  # never repeat
    assert c.stop.grace == 0.0  # SIGTERM with the stop word
    assert load_config(_write(tmp_path, "stop: {kill_after: 0s}\n")).stop.kill_after == 0.0


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    c = load_config(_write(tmp_path, "run_dir: run\njournal: state/j.db\nrules: [r.yaml]\n"))
    assert c.run_dir == tmp_path / "run"
    assert c.journal == tmp_path / "state" / "j.db"
    assert c.rule_files == (str(tmp_path / "r.yaml"),)


def test_an_empty_file_is_the_zero_config(tmp_path: Path) -> None:
    c = load_config(_write(tmp_path, ""))
    assert c == Config(source=c.source)
    assert load_config(_write(tmp_path, "exporter: false\n")).exporter.enabled is False


def test_every_mistake_is_reported_with_its_position(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        """\
tick: fast
exporter: {listen: "nowhere"}
stop: {grace: 1h, kil_after: 5s}
dry_run: maybe
colour: blue
""",
    )
    with pytest.raises(RuleFileError) as e:
        load_config(p)
    got = [(x.line, x.column) for x in e.value.problems]
    text = str(e.value)
    assert (1, 7) in got and "'fast' is not a duration" in text
    assert (2, 20) in got and "not HOST:PORT" in text
    assert (3, 19) in got and "unknown key 'kil_after'" in text
    assert (4, 10) in got and "expected true or false" in text
    assert (5, 1) in got and "unknown key 'colour'" in text
    assert f"{p}:1:7:" in text


def test_a_tick_out_of_range_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="tick: must be between"):
        load_config(_write(tmp_path, "tick: 1ms\n"))


def test_sentinel_check_reads_a_config_and_the_rules_it_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sentinel.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: x > > 1\n")
    cfg = _write(tmp_path, f"builtin_packs: false\nrules: [{bad}]\n")
    assert main(["check", str(cfg)]) == 1
    assert f"{bad}:5:19: expr: syntax error" in capsys.readouterr().err
    bad.write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: x > 1\n")
    assert main(["check", str(cfg)]) == 0
    assert "a config with 1 rule from 1 file" in capsys.readouterr().out


def test_log_sources(tmp_path: Path) -> None:
    from sentinel.sources.logs import LogSpec

    c = load_config(
        _write(
            tmp_path,
            "logs:\n  - {path: runs/*/train.log}\n"
            "  - {path: /var/log/x.log, job: x, rank: 3, parser: nanogpt, from: start}\n",
        )
    )
    assert c.logs == (
        LogSpec(str(tmp_path / "runs/*/train.log")),
        LogSpec("/var/log/x.log", "x", 3, "nanogpt", True),
    )
    with pytest.raises(RuleFileError) as e:
        load_config(_write(tmp_path, "logs:\n  - {path: a.log, parser: magic, from: middle}\n"))
    assert "'magic' is not one of" in str(e.value) and "'middle' is not start or end" in str(
        e.value
    )


def test_a_null_job_and_an_empty_rules_glob(tmp_path: Path) -> None:
    import os
    import stat

    from sentinel.config.rulefiles import rule_paths
    from sentinel.daemon.lifecycle import make_run_dir

    c = load_config(
        _write(
            tmp_path,
            f"builtin_packs: false\nrules: [{tmp_path}/rules.d/*.yaml, {tmp_path}/named.yaml]\n"
            "logs: [{path: a.log, job: null}]\n",
        )
    )
    assert c.logs[0].job is None
    assert rule_paths(c) == [tmp_path / "named.yaml"]  # the empty glob adds nothing
    run = tmp_path / "shm" / "sentinel"
    make_run_dir(run)
    assert stat.S_IMODE(os.stat(run).st_mode) == 0o1777


def test_a_bad_user_parser_is_reported_at_its_place(tmp_path: Path) -> None:
    from sentinel.rules.problems import RuleFileError

    config = tmp_path / "sentinel.yaml"
    config.write_text("parsers:\n  - regex: 'loss (?P<loss>\\S+'\n  - regex: 'no groups here'\n")
    with pytest.raises(RuleFileError) as e:
        load_config(config)
    text = str(e.value)
    assert f"{config}:2:" in text and "missing )" in text
    assert f"{config}:3:" in text
