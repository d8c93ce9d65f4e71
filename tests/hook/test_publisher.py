"""The Publisher hook: what it writes, what it reads back, and that it never crashes training.

Every test publishes into a fresh run directory and reads the segment back
with ``SegmentReader``, the daemon's side of contract 1. Process lifetime
(atexit, a second live publisher, leftovers of dead ones) uses real
``python -c`` subprocesses; nothing here waits by sleeping a fixed time.
"""

from __future__ import annotations

import math
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sentinel
from sentinel import Publisher, PublisherWarning, StopRequested
from sentinel.hook.values import Pending, Record
from sentinel.wire import STOP_OPERATOR, STOP_RULE, Batch, SegmentReader, SegmentWriter
from tests.helpers import eventually

JOB = "train"


def _pub(run_dir: Path, **kwargs: Any) -> Publisher:
    kwargs.setdefault("rank", 0)
    kwargs.setdefault("world_size", 1)
    return Publisher(job=JOB, run_dir=run_dir, **kwargs)


def _seg(run_dir: Path, rank: int = 0, job: str = JOB) -> Path:
    return run_dir / f"{job}.rank{rank}.seg"


def _read(path: Path) -> Batch:
    with SegmentReader(path) as r:
        return r.read_since(0)


def _rows(path: Path) -> list[tuple[int, dict[str, float]]]:
    return [(step, metrics) for _, step, _, metrics in _read(path).rows()]


def _closed(path: Path) -> bool:
    with SegmentReader(path) as r:
        return r.closed


def _request_stop(path: Path, reason: str, code: int = STOP_OPERATOR) -> None:
    with SegmentReader(path, writable=True) as r:
        r.request_stop(code, reason, time.time())


def _request_checkpoint(path: Path) -> None:
    with SegmentReader(path, writable=True) as r:
        r.request_checkpoint()


def _python(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _run(
    code: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )


@pytest.fixture
def caught() -> Iterator[list[warnings.WarningMessage]]:
    """Every warning raised in the test, none filtered out as a repeat."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        yield seen


def _publisher_warnings(seen: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in seen if issubclass(w.category, PublisherWarning)]


# -- round trip ----------------------------------------------------------------------


def test_every_accepted_value_type_round_trips_exactly(tmp_path: Path) -> None:
    pub = _pub(tmp_path)
    pub.publish(
        3,
        py_float=0.1,
        py_int=7,
        py_bool=True,
        np_f32=np.float32(0.1),
        np_i64=np.int64(-42),
        np_bool=np.bool_(False),
        t_0d=torch.tensor(2.5),
        t_1el=torch.tensor([0.1], dtype=torch.float32),
        t_int=torch.tensor(9, dtype=torch.int64),
        t_grad=torch.tensor(1.25, requires_grad=True) * 2,
    )
    pub.close()
    assert _rows(_seg(tmp_path)) == [
        (
            3,
            {
                "py_float": 0.1,
                "py_int": 7.0,
                "py_bool": 1.0,
                "np_f32": float(np.float32(0.1)),
                "np_i64": -42.0,
                "np_bool": 0.0,
                "t_0d": 2.5,
                "t_1el": float(np.float32(0.1)),
                "t_int": 9.0,
                "t_grad": 2.5,
            },
        )
    ]


def test_steps_and_values_of_a_long_run_round_trip(tmp_path: Path) -> None:
    # After the first call the same names take the fast path; every value must still land.
    pub = _pub(tmp_path)
    for step in range(200):
        pub.publish(step, loss=1.0 / (step + 1), lr=step * 1e-4, tokens=step * 1024)
    pub.close()
    batch = _read(_seg(tmp_path))
    assert batch.names == ("loss", "lr", "tokens")
    assert batch.steps.tolist() == list(range(200))
    assert batch.present.all()
    np.testing.assert_array_equal(batch.values[:, 0], [1.0 / (s + 1) for s in range(200)])
    np.testing.assert_array_equal(batch.values[:, 1], [s * 1e-4 for s in range(200)])
    np.testing.assert_array_equal(batch.values[:, 2], [s * 1024.0 for s in range(200)])


def test_metrics_in_any_order_land_in_their_own_column(tmp_path: Path) -> None:
    pub = _pub(tmp_path)
    pub.publish(0, a=1.0, b=2.0, c=3.0)
    for step in (1, 2):  # non-contiguous columns: the scattered path, then its cached plan
        pub.publish(step, c=step + 30.0, a=step + 10.0)
    pub.publish(3, b=np.float32(42.0), a=5.0)  # reversed order, NumPy value: the slow path
    pub.close()
    assert _rows(_seg(tmp_path)) == [
        (0, {"a": 1.0, "b": 2.0, "c": 3.0}),
        (1, {"a": 11.0, "c": 31.0}),
        (2, {"a": 12.0, "c": 32.0}),
        (3, {"a": 5.0, "b": 42.0}),
    ]


@pytest.mark.parametrize(
    "make",
    [float, np.float64, np.float32, torch.tensor],
    ids=["float", "np.float64", "np.float32", "tensor"],
)
def test_nan_and_infinities_are_published_as_they_are(tmp_path: Path, make: Any) -> None:
    pub = _pub(tmp_path)
    for step in range(2):  # twice: the second call may take the fast path
        pub.publish(step, nan=make(float("nan")), pinf=make(float("inf")), ninf=make(float("-inf")))
    pub.close()
    batch = _read(_seg(tmp_path))
    assert batch.present.all()
    for row in batch.values:
        assert math.isnan(row[0])
        assert row[1] == math.inf
        assert row[2] == -math.inf


def test_a_metric_not_published_at_a_step_is_absent_there(tmp_path: Path) -> None:
    pub = _pub(tmp_path)
    pub.publish(0, loss=1.0, acc=0.5)
    pub.publish(1, loss=0.9)
    pub.publish(2, acc=0.6)
    pub.publish(3, loss=float("nan"), acc=0.7)
    pub.close()
    batch = _read(_seg(tmp_path))
    assert batch.names == ("loss", "acc")
    assert batch.present.tolist() == [[True, True], [True, False], [False, True], [True, True]]
    # Absent is not the same as a published NaN: only the mask tells them apart.
    assert math.isnan(batch.values[1, 1])
    assert math.isnan(batch.values[2, 0])
    assert math.isnan(batch.values[3, 0])
    assert [m for _, m in _rows(_seg(tmp_path))][1:3] == [{"loss": 0.9}, {"acc": 0.6}]


def test_names_added_while_running_grow_the_table(tmp_path: Path) -> None:
    pub = _pub(tmp_path)
    pub.publish(0, loss=1.0)
    with SegmentReader(_seg(tmp_path)) as r:
        assert r.names() == ("loss",)
        pub.publish(1, loss=0.9, grad_norm=3.0)
        pub.publish(2, diversity=0.4, loss=0.8)
        assert r.names() == ("loss", "grad_norm", "diversity")
        assert [m for *_, m in r.read_since(0).rows()] == [
            {"loss": 1.0},
            {"loss": 0.9, "grad_norm": 3.0},
            {"loss": 0.8, "diversity": 0.4},
        ]
    pub.close()


def test_a_publish_with_no_metrics_still_records_the_step(tmp_path: Path) -> None:
    pub = _pub(tmp_path)
    pub.publish(5)
    pub.publish(6)
    pub.close()
    assert _rows(_seg(tmp_path)) == [(5, {}), (6, {})]


# -- the segment file ------------------------------------------------------------------


def test_segment_is_private_named_after_job_and_rank_and_says_who_wrote_it(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    pub = Publisher(job="vq-gan.v2", rank=3, world_size=4, run_dir=run_dir)
    path = run_dir / "vq-gan.v2.rank3.seg"
    assert pub.path == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert [p.name for p in run_dir.iterdir()] == [path.name]  # no temporary file left over
    with SegmentReader(path) as r:
        ident = r.identity
        assert (ident.job, ident.rank, ident.world_size, ident.pid, ident.host) == (
            "vq-gan.v2",
            3,
            4,
            os.getpid(),
            socket.gethostname()[:63],
        )
        assert ident.uid == os.getuid()
        assert not r.closed
    pub.close()


# -- rank and world size ----------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "SENTINEL_RUN_DIR"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("env", "args", "expected"),
    [
        ({}, {}, (0, 1)),
        ({"RANK": "2", "WORLD_SIZE": "4"}, {}, (2, 4)),
        ({"RANK": "2", "LOCAL_RANK": "1", "WORLD_SIZE": "4"}, {}, (2, 4)),
        ({"LOCAL_RANK": "1", "WORLD_SIZE": "2"}, {}, (1, 2)),
        ({"RANK": "", "LOCAL_RANK": "1", "WORLD_SIZE": "2"}, {}, (1, 2)),
        ({"RANK": "2", "WORLD_SIZE": "4"}, {"rank": 1, "world_size": 8}, (1, 8)),
        ({"RANK": "2", "WORLD_SIZE": "4"}, {"rank": 0}, (0, 4)),
        ({"RANK": "2", "WORLD_SIZE": "4"}, {"world_size": 3}, (2, 3)),
        ({"LOCAL_RANK": "1"}, {}, (1, 2)),
        ({"RANK": "5", "WORLD_SIZE": "4"}, {}, (5, 6)),
    ],
    ids=[
        "nothing",
        "RANK",
        "RANK-over-LOCAL_RANK",
        "LOCAL_RANK",
        "empty-RANK",
        "args-win",
        "rank-arg",
        "world-arg",
        "LOCAL_RANK-without-WORLD_SIZE",
        "env-rank-beyond-env-world",
    ],
)
def test_rank_and_world_size_come_from_args_then_env(
    tmp_path: Path,
    clean_env: pytest.MonkeyPatch,
    env: dict[str, str],
    args: dict[str, int],
    expected: tuple[int, int],
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    pub = Publisher(job=JOB, run_dir=tmp_path, **args)
    assert (pub.rank, pub.world_size) == expected
    assert pub.path == _seg(tmp_path, expected[0])
    with SegmentReader(_seg(tmp_path, expected[0])) as r:
        assert (r.identity.rank, r.identity.world_size) == expected
    pub.close()


def test_contradicting_explicit_rank_and_world_size_raise(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="rank 3 does not fit world size 2"):
        Publisher(job=JOB, rank=3, world_size=2, run_dir=tmp_path)


def test_a_second_publisher_in_the_same_process_takes_over(tmp_path: Path) -> None:
    first = Publisher(job=JOB, rank=0, run_dir=tmp_path)
    first.publish(0, loss=1.0)
    second = Publisher(job=JOB, rank=0, run_dir=tmp_path)  # a re-run notebook cell
    assert not first.enabled and second.enabled
    first.publish(1, loss=2.0)  # the old one is a quiet no-op now
    second.publish(0, loss=3.0)
    with SegmentReader(_seg(tmp_path)) as r:
        assert [m for *_, m in r.read_since(0).rows()] == [{"loss": 3.0}]
    second.close()


def test_run_dir_comes_from_sentinel_run_dir(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SENTINEL_RUN_DIR", str(tmp_path / "shm"))
    pub = Publisher(job=JOB)
    assert pub.path == _seg(tmp_path / "shm")
    pub.close()


# -- close and the context manager --------------------------------------------------------


def test_close_marks_the_segment_finished_and_is_idempotent(tmp_path: Path) -> None:
    pub = _pub(tmp_path)
    pub.publish(0, loss=1.0)
    assert not _closed(_seg(tmp_path))
    pub.close()
    assert _closed(_seg(tmp_path))
    pub.close()
    pub.publish(1, loss=2.0)  # after close: nothing written, nothing raised
    assert _rows(_seg(tmp_path)) == [(0, {"loss": 1.0})]


def test_leaving_the_with_block_normally_closes(tmp_path: Path) -> None:
    with _pub(tmp_path) as pub:
        pub.publish(0, loss=1.0)
    assert _closed(_seg(tmp_path))


def _train_in_a_with_block(run_dir: Path, fail: BaseException | None) -> None:
    with _pub(run_dir, on_stop="raise") as pub:
        pub.publish(0, loss=1.0)
        if fail is not None:
            raise fail
        _request_stop(_seg(run_dir), "asked")
        pub.publish(1, loss=1.0)  # raises StopRequested


def test_leaving_the_with_block_by_an_error_leaves_the_run_unfinished(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError):
        _train_in_a_with_block(tmp_path, ZeroDivisionError())
    assert not _closed(_seg(tmp_path))
    assert _rows(_seg(tmp_path)) == [(0, {"loss": 1.0})]


def test_leaving_the_with_block_by_stop_requested_closes(tmp_path: Path) -> None:
    with pytest.raises(StopRequested):
        _train_in_a_with_block(tmp_path, None)
    assert _closed(_seg(tmp_path))
    assert _rows(_seg(tmp_path)) == [(0, {"loss": 1.0}), (1, {"loss": 1.0})]


EXITING_SCRIPT = """
    import os, sys, time
    from sentinel import Publisher
    from sentinel.wire import STOP_OPERATOR, SegmentReader
    pub = Publisher(job="exiting", rank=0, world_size=1, on_stop="raise")  # $SENTINEL_RUN_DIR
    pub.publish(0, loss=1.0)
    pub.publish(1, loss=0.5)
    how = sys.argv[1]
    if how == "raise":
        raise RuntimeError("the trainer crashed")
    if how == "os._exit":
        os._exit(0)
    if how == "stop":
        with SegmentReader(pub.path, writable=True) as r:
            r.request_stop(STOP_OPERATOR, "operator said so", time.time())
        pub.publish(2, loss=0.25)  # raises StopRequested, left uncaught
"""


@pytest.mark.parametrize(
    ("how", "returncode", "closed"),
    [("return", 0, True), ("raise", 1, False), ("os._exit", 0, False)],
)
def test_the_exit_hook_closes_only_runs_that_ended_normally(
    tmp_path: Path, how: str, returncode: int, closed: bool
) -> None:
    done = _run(EXITING_SCRIPT, how, env={"SENTINEL_RUN_DIR": str(tmp_path)})
    assert done.returncode == returncode, done.stderr
    assert "PublisherWarning" not in done.stderr
    path = _seg(tmp_path, job="exiting")
    assert _closed(path) is closed
    assert _rows(path) == [(0, {"loss": 1.0}), (1, {"loss": 0.5})]


def test_the_exit_hook_closes_a_run_that_obeyed_a_stop_by_raising(tmp_path: Path) -> None:
    # BUG (sentinel/hook/publisher.py, _close_at_exit): with on_stop="raise" the natural
    # way to obey a stop is to let StopRequested end the script. __exit__ calls that a
    # finished run ("obeying a stop is"), but the atexit hook treats any sys.last_value
    # as a crash, so the same run is reported dead or finished depending on whether the
    # trainer used a with block.
    done = _run(EXITING_SCRIPT, "stop", env={"SENTINEL_RUN_DIR": str(tmp_path)})
    assert done.returncode == 1
    assert "StopRequested" in done.stderr
    path = _seg(tmp_path, job="exiting")
    assert _rows(path)[-1] == (2, {"loss": 0.25})
    assert _closed(path), "a run that obeyed a stop request is finished, not dead"


# -- stop and checkpoint requests -------------------------------------------------------------


def test_should_stop_and_stop_reason_follow_the_control_words(tmp_path: Path) -> None:
    pub = _pub(tmp_path)
    pub.publish(0, loss=1.0)
    assert not pub.should_stop
    assert pub.stop_reason is None
    _request_stop(_seg(tmp_path), "EncoderCollapse: similarity 0.97", code=STOP_RULE)
    assert pub.should_stop
    assert pub.stop_reason == "EncoderCollapse: similarity 0.97"
    assert pub.stop_reason_code() == (STOP_RULE, "EncoderCollapse: similarity 0.97")
    pub.publish(1, loss=1.0)  # on_stop="flag": publishing goes on
    assert pub.should_stop
    pub.close()
    assert _rows(_seg(tmp_path))[-1] == (1, {"loss": 1.0})


@pytest.mark.parametrize(
    "value", [2.0, np.float32(2.0), torch.tensor(2.0)], ids=["fast-path", "numpy", "tensor"]
)
def test_on_stop_raise_raises_from_the_next_publish_after_writing_it(
    tmp_path: Path, value: Any
) -> None:
    pub = _pub(tmp_path, on_stop="raise")
    pub.publish(0, loss=1.0)
    pub.publish(1, loss=1.0)
    _request_stop(_seg(tmp_path), "loss exploded", code=STOP_RULE)
    with pytest.raises(StopRequested, match="loss exploded") as info:
        pub.publish(2, loss=value)
    assert (info.value.code, info.value.reason, info.value.step) == (STOP_RULE, "loss exploded", 2)
    assert isinstance(info.value, sentinel.SentinelError)
    assert _rows(_seg(tmp_path))[-1] == (2, {"loss": 2.0})
    pub.close()


def test_checkpoint_requests_are_seen_until_acknowledged(tmp_path: Path) -> None:
    pub = _pub(tmp_path)
    path = _seg(tmp_path)
    pub.publish(0, loss=1.0)
    assert not pub.should_checkpoint
    _request_checkpoint(path)
    assert pub.should_checkpoint
    assert pub.should_checkpoint  # reading does not consume it
    pub.checkpoint_done()
    assert not pub.should_checkpoint
    with SegmentReader(path) as r:
        assert r.checkpoint == (1, 1)
    _request_checkpoint(path)
    assert pub.should_checkpoint
    pub.checkpoint_done()
    assert not pub.should_checkpoint
    with SegmentReader(path) as r:
        assert r.checkpoint == (2, 2)
    pub.close()


# -- user errors raise, naming the metric -------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "1.0",
        [1.0],
        {"a": 1.0},
        None,
        1 + 2j,
        np.complex128(1j),
        np.array([1.0, 2.0]),
        np.array("1.0"),
        torch.tensor([1.0, 2.0]),
        torch.tensor(1 + 2j),
        torch.tensor([]),
    ],
    ids=lambda v: type(v).__name__ + (f"{tuple(v.shape)}" if hasattr(v, "shape") else ""),
)
def test_a_non_numeric_value_raises_type_error_naming_the_metric(
    tmp_path: Path, value: object
) -> None:
    pub = _pub(tmp_path)
    pub.publish(0, encoder_similarity=0.5)
    with pytest.raises(TypeError, match="encoder_similarity"):
        pub.publish(1, encoder_similarity=value)
    with pytest.raises(TypeError, match="the_bad_one"):
        pub.publish(1, loss=1.0, the_bad_one=value)
    assert pub.enabled  # a user error does not switch the hook off
    pub.publish(2, encoder_similarity=0.6)
    pub.close()
    assert _rows(_seg(tmp_path))[-1] == (2, {"encoder_similarity": 0.6})


def test_an_integer_too_large_for_a_float_is_a_user_error(tmp_path: Path) -> None:
    # BUG (sentinel/hook/values.py, convert): a Python int is passed through unchecked;
    # 10**400 then fails inside struct.pack, which is caught as an *internal* error: the
    # hook warns and stops publishing for the rest of the run instead of raising a
    # TypeError that names the metric, as it does for every other unusable value.
    pub = _pub(tmp_path)
    pub.publish(0, tokens=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PublisherWarning)
        with pytest.raises(TypeError, match="tokens"):
            pub.publish(1, tokens=10**400)
    assert pub.enabled
    pub.close()


@pytest.mark.parametrize("name", ["bad name", "1x", "x" * 64, "loss-total", "é", ""])
def test_an_invalid_metric_name_raises_value_error_naming_it(tmp_path: Path, name: str) -> None:
    pub = _pub(tmp_path)
    with pytest.raises(ValueError, match=re.escape(repr(name))):
        pub.publish(0, **{name: 1.0})
    pub.publish(0, **{"x" * 63: 1.0})  # 63 characters is the longest name that fits
    pub.close()
    assert _read(_seg(tmp_path)).names == ("x" * 63,)


def test_a_metric_beyond_max_metrics_raises_value_error_naming_it(tmp_path: Path) -> None:
    pub = _pub(tmp_path, max_metrics=2)
    pub.publish(0, a=1.0, b=2.0)
    with pytest.raises(ValueError, match="'c' does not fit"):
        pub.publish(1, a=1.0, c=3.0)
    with pytest.raises(ValueError, match="'overflow' does not fit"):
        pub.publish(1, overflow=3.0)
    pub.publish(2, b=5.0, a=4.0)
    pub.close()
    assert _rows(_seg(tmp_path))[-1] == (2, {"a": 4.0, "b": 5.0})
    assert _read(_seg(tmp_path)).names == ("a", "b")


@pytest.mark.parametrize("step", [1.0, 2.5, "3", None, np.float64(4.0), torch.tensor(1.5)])
def test_a_non_integer_step_raises_type_error(tmp_path: Path, step: Any) -> None:
    pub = _pub(tmp_path)
    pub.publish(0, loss=1.0)
    with pytest.raises(TypeError, match="step"):
        pub.publish(step, loss=1.0)
    pub.close()


def test_integer_like_steps_are_accepted(tmp_path: Path) -> None:
    pub = _pub(tmp_path)
    pub.publish(np.int64(7), loss=1.0)
    pub.publish(torch.tensor(8), loss=1.0)
    pub.close()
    assert _read(_seg(tmp_path)).steps.tolist() == [7, 8]


# -- problems of ours never reach training ---------------------------------------------------------


def _unwritable(tmp_path: Path, kind: str) -> Path:
    # Tests run as root, for whom a 0500 directory is writable; these two fail for root too.
    if kind == "proc":
        return Path("/proc/forbidden/sentinel")
    regular = tmp_path / "a-regular-file"
    regular.write_text("not a directory")
    return regular / "sentinel"


def _assert_degraded_and_quiet(pub: Publisher, seen: list[warnings.WarningMessage]) -> None:
    assert not pub.enabled
    assert pub.path is None
    for step in range(5):
        pub.publish(step, loss=1.0, acc=np.float32(0.5), t=torch.tensor(1.0))
    assert not pub.should_stop
    assert pub.stop_reason is None
    assert not pub.should_checkpoint
    pub.checkpoint_done()
    pub.close()
    assert len(_publisher_warnings(seen)) == 1, _publisher_warnings(seen)


@pytest.mark.parametrize("kind", ["proc", "under-a-file"])
def test_an_unwritable_run_dir_warns_once_and_publishing_becomes_a_no_op(
    tmp_path: Path, kind: str, caught: list[warnings.WarningMessage]
) -> None:
    run_dir = _unwritable(tmp_path, kind)
    pub = Publisher(job=JOB, rank=0, world_size=1, run_dir=run_dir)
    [message] = _publisher_warnings(caught)
    assert str(run_dir) in message
    _assert_degraded_and_quiet(pub, caught)


def test_user_errors_still_raise_when_publishing_is_degraded(
    tmp_path: Path, caught: list[warnings.WarningMessage]
) -> None:
    pub = Publisher(job=JOB, rank=0, world_size=1, run_dir=_unwritable(tmp_path, "under-a-file"))
    assert not pub.enabled
    with pytest.raises(TypeError, match="loss"):
        pub.publish(0, loss="nan")
    with pytest.raises(ValueError, match="'bad name'"):
        pub.publish(0, **{"bad name": 1.0})
    with pytest.raises(TypeError, match="step"):
        pub.publish(0.5, loss=1.0)
    assert len(_publisher_warnings(caught)) == 1


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: a full /dev/shm in miniature (we run as root, so mount works)."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({done.stderr.strip()}); "
            "test_a_file_size_limit_* covers the full disk without mounting"
        )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_tmpfs_warns_once_and_training_continues(
    tiny_tmpfs: Path, caught: list[warnings.WarningMessage]
) -> None:
    # The default geometry needs ~4 MiB; the tmpfs holds 64 KiB.
    pub = Publisher(job=JOB, rank=0, world_size=1, run_dir=tiny_tmpfs)
    [message] = _publisher_warnings(caught)
    assert "No space left" in message
    _assert_degraded_and_quiet(pub, caught)
    assert list(tiny_tmpfs.iterdir()) == []  # the half-built file does not eat the space


FILL_AFTER_CREATE = """
    import sys, warnings
    from pathlib import Path
    from sentinel import Publisher
    warnings.simplefilter("error")
    run_dir = Path(sys.argv[1])
    pub = Publisher(job="tiny", rank=0, world_size=1, run_dir=run_dir, ring=4, max_metrics=2)
    try:  # fill the rest of the tmpfs
        with open(run_dir / "filler", "wb") as f:
            while True:
                f.write(b"x" * 4096)
                f.flush()
    except OSError:
        pass
    for step in range(100):  # every page of the segment was reserved: no SIGBUS
        pub.publish(step, loss=float(step))
    pub.close()
    print("trained to the end", pub.enabled)
"""


def test_a_tmpfs_that_fills_after_creation_does_not_hurt_publishing(tiny_tmpfs: Path) -> None:
    # In a subprocess: a lazily grown mmap on a full tmpfs would die of SIGBUS.
    done = _run(FILL_AFTER_CREATE, str(tiny_tmpfs))
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert done.stdout.strip() == "trained to the end False"  # closed, hence not enabled
    assert _read(tiny_tmpfs / "tiny.rank0.seg").steps.tolist() == [96, 97, 98, 99]


FSIZE_LIMITED = """
    import resource, signal, sys, warnings
    from sentinel import Publisher, PublisherWarning
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so the limit gives EFBIG, not death
    resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        pub = Publisher(job="limited", rank=0, world_size=1, run_dir=sys.argv[1])
        for step in range(100):
            pub.publish(step, loss=float(step))
        pub.close()
    ours = [str(w.message) for w in seen if issubclass(w.category, PublisherWarning)]
    print(len(ours), pub.enabled)
    print(ours[0] if ours else "")
"""


def test_a_file_size_limit_warns_once_and_training_continues(tmp_path: Path) -> None:
    # Runs everywhere (no mount needed): RLIMIT_FSIZE makes the disk "full" for one process.
    done = _run(FSIZE_LIMITED, str(tmp_path))
    assert done.returncode == 0, done.stderr
    summary, message = done.stdout.splitlines()
    assert summary == "1 False"  # one warning, publishing off
    assert "File too large" in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", [2.0, np.float32(2.0)], ids=["fast-path", "slow-path"])
def test_an_internal_error_warns_once_and_disables_publishing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caught: list[warnings.WarningMessage],
    value: Any,
) -> None:
    pub = _pub(tmp_path)
    pub.publish(0, loss=1.0)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(SegmentWriter, "write", broken)
    monkeypatch.setattr(SegmentWriter, "write_scattered", broken)
    pub.publish(1, loss=value)  # no raise
    [message] = _publisher_warnings(caught)
    assert "a bug of ours" in message
    _assert_degraded_and_quiet(pub, caught)
    assert _rows(_seg(tmp_path)) == [(0, {"loss": 1.0})]
    assert not _closed(_seg(tmp_path))  # a run that broke is not a finished one


# -- one live publisher per (job, rank) -----------------------------------------------------

HOLDER = """
    import sys
    from sentinel import Publisher
    pub = Publisher(job="shared", rank=0, world_size=1, run_dir=sys.argv[1])
    step = 0
    pub.publish(step, loss=1.0)
    for line in sys.stdin:  # one command a line, from the test
        if line.strip() == "publish":
            step += 1
            pub.publish(step, loss=1.0)
        elif line.strip() == "close":
            pub.close()
        print("ok", flush=True)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process that publishes job 'shared' rank 0 until its stdin closes."""
    proc = _python(HOLDER, str(tmp_path))
    try:
        eventually(lambda: _seg(tmp_path, job="shared").exists(), timeout=30)
        yield proc
    finally:
        proc.kill()
        proc.communicate(timeout=30)


def _command(proc: subprocess.Popen[str], command: str) -> None:
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(command + "\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == "ok\n"


def test_a_second_live_publisher_warns_and_leaves_the_first_alone(
    tmp_path: Path, holder: subprocess.Popen[str], caught: list[warnings.WarningMessage]
) -> None:
    path = _seg(tmp_path, job="shared")
    inode = path.stat().st_ino
    pub = Publisher(job="shared", rank=0, world_size=1, run_dir=tmp_path)
    [message] = _publisher_warnings(caught)
    assert "live process" in message
    assert not pub.enabled
    pub.publish(0, loss=99.0)
    pub.close()
    _command(holder, "publish")
    assert path.stat().st_ino == inode
    with SegmentReader(path) as r:
        assert r.identity.pid == holder.pid
        assert not r.closed
    assert _rows(path) == [(0, {"loss": 1.0}), (1, {"loss": 1.0})]


@pytest.mark.parametrize("ending", ["killed", "closed-but-alive"])
def test_a_leftover_of_a_dead_or_finished_publisher_is_replaced(
    tmp_path: Path, holder: subprocess.Popen[str], ending: str
) -> None:
    if ending == "killed":
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    else:
        _command(holder, "close")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PublisherWarning)
        pub = Publisher(job="shared", rank=0, world_size=1, run_dir=tmp_path)
    pub.publish(5, loss=2.0)
    path = _seg(tmp_path, job="shared")
    with SegmentReader(path) as r:
        assert r.identity.pid == os.getpid()
    assert _rows(path) == [(5, {"loss": 2.0})]
    pub.close()


# -- device tensors resolve asynchronously, in call order -----------------------------------
# CUDA is not available on this CPU-only machine, so the CUDA event a device copy
# waits on is replaced by a fake with the same query() method.


class FakeEvent:
    """Stands in for ``torch.cuda.Event``: incomplete until the test says otherwise."""

    def __init__(self) -> None:
        self.done = False
        self.queries = 0

    def query(self) -> bool:
        self.queries += 1
        return self.done


def _record(step: int, value: float, event: FakeEvent | None = None) -> Record:
    rec = Record(step, 1000.0 + step, [0], [0.0 if event is not None else value])
    if event is not None:
        rec.waits.append(([0], np.array([value]), event))
    return rec


def test_a_record_waiting_for_its_copy_holds_back_the_later_ones() -> None:
    pending = Pending()
    event = FakeEvent()
    pending.push(_record(0, 1.0))
    pending.push(_record(1, 2.0, event))
    pending.push(_record(2, 3.0))
    assert [r.step for r in pending.ready()] == [0]
    assert [r.step for r in pending.ready()] == []
    assert len(pending) == 2
    assert event.queries >= 2  # polled, never waited on
    event.done = True
    out = pending.ready()
    assert [(r.step, r.values) for r in out] == [(1, [2.0]), (2, [3.0])]
    assert len(pending) == 0
    assert pending.dropped == 0


def test_records_of_several_copies_are_written_in_call_order() -> None:
    pending = Pending()
    first, second = FakeEvent(), FakeEvent()
    pending.push(_record(0, 1.0, first))
    pending.push(_record(1, 2.0, second))
    second.done = True  # the later copy lands first
    assert pending.ready() == []
    first.done = True
    assert [(r.step, r.values) for r in pending.ready()] == [(0, [1.0]), (1, [2.0])]


def test_pending_drops_the_oldest_beyond_its_limit_and_at_close() -> None:
    pending = Pending(limit=3)
    stuck = FakeEvent()
    pending.push(_record(0, 1.0, stuck))
    pending.push(_record(1, 2.0))
    pending.push(_record(2, 3.0))
    pending.push(_record(3, 4.0, stuck))  # over the limit: step 0 is dropped
    assert pending.dropped == 1
    assert [r.step for r in pending.queue] == [1, 2, 3]
    clock = iter([0.0, 0.0, 1.0, 2.0])
    assert [r.step for r in pending.drain(0.5, lambda: next(clock))] == [1, 2]
    assert pending.dropped == 2
    assert len(pending) == 0


def test_the_publisher_writes_device_values_late_but_in_step_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[FakeEvent] = []

    def fake_stage(record: Record, tensors: list[tuple[int, Any]]) -> None:
        event = FakeEvent()
        events.append(event)
        slots = [i for i, _ in tensors]
        record.waits.append((slots, np.array([10.0 * record.step + i for i in slots]), event))

    monkeypatch.setattr("sentinel.hook.publisher.stage", fake_stage)
    # A "meta" tensor is not on the CPU, so the hook treats it as a device tensor.
    device_value = torch.tensor(0.0, device="meta")
    pub = _pub(tmp_path)
    pub.publish(0, loss=1.0, sim=device_value)
    pub.publish(1, loss=2.0)
    pub.publish(2, loss=3.0)
    assert _rows(_seg(tmp_path)) == []  # held back behind step 0's copy
    events[0].done = True
    pub.publish(3, loss=4.0, sim=device_value)
    assert _rows(_seg(tmp_path)) == [
        (0, {"loss": 1.0, "sim": 1.0}),
        (1, {"loss": 2.0}),
        (2, {"loss": 3.0}),
    ]
    pub.publish(4, loss=5.0)
    events[1].done = True
    pub.close()
    assert _rows(_seg(tmp_path))[3:] == [(3, {"loss": 4.0, "sim": 31.0}), (4, {"loss": 5.0})]
    with SegmentReader(_seg(tmp_path)) as r:
        assert r.dropped == 0
        assert r.closed


def test_close_gives_up_on_a_copy_that_never_lands_and_counts_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(record: Record, tensors: list[tuple[int, Any]]) -> None:
        record.waits.append(([i for i, _ in tensors], np.zeros(len(tensors)), FakeEvent()))

    monkeypatch.setattr("sentinel.hook.publisher.stage", never)
    pub = _pub(tmp_path)
    pub.publish(0, loss=1.0)
    pub.publish(1, sim=torch.tensor(0.0, device="meta"))
    pub.close(timeout=0.05)
    assert _rows(_seg(tmp_path)) == [(0, {"loss": 1.0})]
    with SegmentReader(_seg(tmp_path)) as r:
        assert r.dropped == 1
        assert r.closed


def test_job_names_are_checked(tmp_path: Path) -> None:
    for job in ("", "has space", "a/b", "x" * 64):
        with pytest.raises(ValueError, match="job name"):
            Publisher(job=job, rank=0, world_size=1, run_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_publishers_of_different_jobs_and_ranks_share_a_run_dir(tmp_path: Path) -> None:
    keys = [(job, rank) for job in ("a", "b") for rank in (0, 1)]
    pubs = [Publisher(job=job, rank=rank, world_size=2, run_dir=tmp_path) for job, rank in keys]
    for i, pub in enumerate(pubs):
        pub.publish(i, value=float(i))
        pub.close()
    for i, (job, rank) in enumerate(keys):
        assert _rows(_seg(tmp_path, rank, job=job)) == [(i, {"value": float(i)})]
