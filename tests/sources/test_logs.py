"""LogSource: saved positions follow the ``logs:`` entries they belong to, not their order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sentinel.model import Sample
from sentinel.sources.logs import LogSource, LogSpec


def line(step: int, loss: float = 2.5) -> str:
    return f"iter {step}: loss {loss}, time 9.0ms, mfu 40.0%\n"


def append(path: Path, *steps: int) -> None:
    with path.open("a") as f:
        f.write("".join(line(s) for s in steps))


def seen(samples: list[Sample]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for s in samples:
        out.setdefault(s.key.job, []).append(s.step)
    return out


def roundtrip(state: Any) -> Any:
    return json.loads(json.dumps(state))  # what the journal stores


def spec(tmp_path: Path, job: str) -> LogSpec:
    return LogSpec(str(tmp_path / job / "*.log"))


def logs(tmp_path: Path, *jobs: str) -> dict[str, Path]:
    out = {}
    for job in jobs:
        (tmp_path / job).mkdir(exist_ok=True)
        out[job] = tmp_path / job / "train.log"
        append(out[job], 0, 1)  # there before the daemon: skipped (from: end)
    return out


def test_reordered_entries_keep_their_positions_and_a_new_one_starts_at_its_end(
    tmp_path: Path,
) -> None:
    f = logs(tmp_path, "a", "b", "c")
    first = LogSource([spec(tmp_path, "a"), spec(tmp_path, "b")])
    assert first.poll(0.0) == []
    append(f["a"], 2)
    append(f["b"], 2, 3)
    assert seen(first.poll(1.0)) == {"a": [2], "b": [2, 3]}
    state = roundtrip(first.export_state())
    first.close()

    append(f["a"], 3)  # written while the daemon was down
    append(f["b"], 4)
    append(f["c"], 2)
    again = LogSource([spec(tmp_path, "c"), spec(tmp_path, "b"), spec(tmp_path, "a")])
    assert again.restore_state(state) == 2
    assert seen(again.poll(2.0)) == {"b": [4], "a": [3]}  # c is new: from its end
    append(f["c"], 3)
    assert seen(again.poll(3.0)) == {"c": [3]}
    again.close()


def test_a_removed_entry_is_dropped_from_the_state(tmp_path: Path) -> None:
    logs(tmp_path, "a", "b")
    first = LogSource([spec(tmp_path, "a"), spec(tmp_path, "b")])
    first.poll(0.0)
    state = roundtrip(first.export_state())
    first.close()
    only_b = LogSource([spec(tmp_path, "b")])
    assert only_b.restore_state(state) == 1
    only_b.poll(1.0)
    saved = only_b.export_state()
    only_b.close()
    assert [e["path"] for e in saved["entries"]] == [str(tmp_path / "b" / "*.log")]
    assert list(saved["entries"][0]["tail"]["files"]) == [str(tmp_path / "b" / "train.log")]


def test_entries_sharing_a_glob_are_told_apart_by_job_and_rank(tmp_path: Path) -> None:
    f = logs(tmp_path, "a")
    glob = str(tmp_path / "a" / "*.log")
    first = LogSource([LogSpec(glob, job="x"), LogSpec(glob, job="y", from_start=True)])
    assert seen(first.poll(0.0)) == {"y": [0, 1]}
    append(f["a"], 2)
    assert seen(first.poll(1.0)) == {"x": [2], "y": [2]}
    state = roundtrip(first.export_state())
    first.close()
    append(f["a"], 3)
    again = LogSource([LogSpec(glob, job="y", from_start=True), LogSpec(glob, job="x")])
    assert again.restore_state(state) == 2
    assert seen(again.poll(2.0)) == {"y": [3], "x": [3]}
    again.close()


def test_a_changed_job_keeps_the_positions_of_its_glob(tmp_path: Path) -> None:
    f = logs(tmp_path, "a")
    glob = str(tmp_path / "a" / "*.log")
    first = LogSource([LogSpec(glob, job="old")])
    first.poll(0.0)
    state = roundtrip(first.export_state())
    first.close()
    append(f["a"], 2)
    again = LogSource([LogSpec(glob, job="new", from_start=True)])
    assert again.restore_state(state) == 1
    assert seen(again.poll(1.0)) == {"new": [2]}  # not the whole file again
    again.close()


def test_the_list_state_of_an_older_sentinel_is_read_by_file(tmp_path: Path) -> None:
    f = logs(tmp_path, "a", "b", "c")
    first = LogSource([spec(tmp_path, "a"), spec(tmp_path, "b")])
    first.poll(0.0)
    old = roundtrip([e.tail.export_state() for e in first.entries])  # by place in the list
    first.close()
    append(f["a"], 2)
    append(f["b"], 2)
    append(f["c"], 2)
    again = LogSource([spec(tmp_path, "b"), spec(tmp_path, "c"), spec(tmp_path, "a")])
    assert again.restore_state(old) == 2
    assert seen(again.poll(1.0)) == {"b": [2], "a": [2]}
    assert again.export_state()["version"] == 2
    again.close()


def test_an_unknown_state_is_a_first_start(tmp_path: Path) -> None:
    f = logs(tmp_path, "a")
    again = LogSource([spec(tmp_path, "a")])
    assert again.restore_state({"version": 99}) == 0
    append(f["a"], 2)
    assert again.poll(0.0) == []  # from its end, as on a first start
    append(f["a"], 3)
    assert seen(again.poll(1.0)) == {"a": [3]}
    again.close()


def test_user_parsers_run_before_the_built_in_one(tmp_path: Path) -> None:
    from sentinel.config import load_config

    (tmp_path / "exp").mkdir()
    log = tmp_path / "exp" / "train.log"
    config = tmp_path / "sentinel.yaml"
    config.write_text(
        f"logs: [{{path: {log}, from: start}}]\n"
        "parsers:\n"
        "  - regex: 'Encoder Diversity \\(iter (?P<step>\\d+)\\): (?P<diversity>\\S+)'\n"
        "  - regex: 'iter (?P<step>\\d+): loss (?P<loss>\\S+),'\n"
        "    prefix: mine_\n"
    )
    log.write_text("Encoder Diversity (iter 7): 0.25\n" + line(8) + "grad_norm=3.5\n")
    c = load_config(config)
    src = LogSource(c.logs, user=c.parsers)
    got = [(s.step, dict(s.metrics)) for s in src.poll(0.0)]
    assert got == [
        (7, {"diversity": 0.25}),
        (8, {"mine_loss": 2.5}),  # the user's parser wins over the nanoGPT format
        (8, {"grad_norm": 3.5}),  # what no user parser takes, auto still reads
    ]
    src.close()


def test_totals_count_lines_by_kind_and_file_events(tmp_path: Path) -> None:
    (tmp_path / "exp").mkdir()
    log = tmp_path / "exp" / "train.log"
    src = LogSource([LogSpec(str(log), from_start=True)])
    log.write_bytes(
        line(1).encode()
        + b"just noise\n"
        + b"grad_norm=3.5 \xff\xfe\n"  # a metric line with bad bytes
        + b"x" * (100 * 1024)  # longer than the 64 KiB line limit: cut
        + b"\n"
    )
    assert [s.step for s in src.poll(0.0)] == [1, 1]
    log.rename(tmp_path / "exp" / "train.log.1")
    log.write_text(line(2))
    assert [s.step for s in src.poll(1.0)] == [2]
    lines, events = src.totals()
    assert lines == {"read": 5, "metric": 3, "other": 2, "cut": 1, "invalid": 1}
    assert events == {"rotation": 1, "truncation": 0, "error": 0}
    src.close()
