"""Load ``sentinel.yaml``: strict keys, every mistake reported as ``file:line:column``.

Environment overrides (``SENTINEL_RUN_DIR``, ``SENTINEL_NOTIFY_URLS``) are
applied by the caller (the daemon's wiring), not read here, so a loaded
config means the same thing in a test and in production.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from yaml.nodes import Node, ScalarNode

from sentinel.durations import parse_duration
from sentinel.rules.problems import Problems
from sentinel.rules.yamlpos import NULL_TAG, Locator, at, compose, fields, sequence, string
from sentinel.sources.logs import LogSpec
from sentinel.sources.parse import PARSERS, UserParser, parsers_from_node

DEFAULT_LISTEN = "127.0.0.1:9464"


@dataclass(frozen=True)
class ExporterConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9464


@dataclass(frozen=True)
class NotifyConfig:
    urls: tuple[str, ...] = ()
    repeat: float = 4 * 3600.0  # 0: never repeat (written 0s or never)


@dataclass(frozen=True)
class StopConfig:
    grace: float = 60.0  # 0: SIGTERM with the stop word
    kill_after: float | None = None  # None: never SIGKILL


@dataclass(frozen=True)
class Config:
    """Everything ``sentinel run`` needs; defaults are the zero-config daemon."""

    source: str = "<defaults>"
    run_dir: Path | None = None  # None: $SENTINEL_RUN_DIR or /dev/shm/sentinel; relative
    # paths (run_dir, rules, journal, logs) are relative to the config file
    tick: float = 0.05
    rule_files: tuple[str, ...] = ()  # files or globs, relative to the config file
    builtin_packs: bool = True
    exporter: ExporterConfig = field(default_factory=ExporterConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    stop: StopConfig = field(default_factory=StopConfig)
    journal: Path | None = None  # None: the state directory's journal.db
    dry_run: bool = False
    forget_after: float = 3600.0
    logs: tuple[LogSpec, ...] = ()
    parsers: tuple[UserParser, ...] = ()  # user regex parsers, tried before the built-ins


# The top-level keys of a config file. ``sentinel check`` tells a config from a
# rule file by them, so a key added here is recognised there too.
KEYS = (
    "logs",
    "run_dir",
    "tick",
    "rules",
    "builtin_packs",
    "exporter",
    "notify",
    "stop",
    "journal",
    "dry_run",
    "forget_after",
    "parsers",
)


def _duration(node: Node, problems: Problems, what: str) -> float | None:
    text = string(node, problems, what=what)
    if text is None:
        return None
    seconds = parse_duration(text)
    if seconds is None:
        at(problems, node, f"{what}: {text!r} is not a duration like 50ms, 30s, 5m, 1h30m")
    return seconds


def _null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == NULL_TAG


def _bool(node: Node, problems: Problems, what: str) -> bool | None:
    if isinstance(node, ScalarNode) and node.tag.endswith(":bool"):
        return node.value.lower() in ("true", "yes", "on")
    at(problems, node, f"{what}: expected true or false")
    return None


def _listen(node: Node, problems: Problems) -> ExporterConfig | None:
    if isinstance(node, ScalarNode) and node.tag.endswith(":bool"):
        return ExporterConfig(enabled=node.value.lower() in ("true", "yes", "on"))
    f = fields(node, problems, what="exporter", allowed=("listen",))
    if f is None or "listen" not in f:
        return ExporterConfig()
    text = string(f["listen"].value, problems, what="exporter.listen")
    if text is None:
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        at(problems, f["listen"].value, f"exporter.listen: {text!r} is not HOST:PORT")
        return None
    return ExporterConfig(True, host.strip("[]") or "127.0.0.1", int(port))


def load_config(path: str | Path) -> Config:
    """Read and check one config file; raises ``RuleFileError`` listing every problem."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    problems = Problems(str(path))
    root = compose(text, problems)
    if root is None or (isinstance(root, ScalarNode) and root.tag == NULL_TAG):
        problems.raise_if_any()
        return Config(source=str(path))
    f = fields(root, problems, what="config", allowed=KEYS)
    values: dict[str, object] = {"source": str(path)}
    if f:
        for key, fld in f.items():
            v = fld.value
            if key in ("run_dir", "journal"):
                s = string(v, problems, what=key)
                values[key] = (path.parent / s) if s else None  # an absolute s stays as it is
            elif key in ("tick", "forget_after"):
                values[key] = _duration(v, problems, key)
            elif key in ("builtin_packs", "dry_run"):
                values[key] = _bool(v, problems, key)
            elif key == "rules":
                items = [
                    string(n, problems, what="rules[]") for n in sequence(v, problems, what=key)
                ]
                values["rule_files"] = tuple(
                    str(path.parent / s) if not Path(s).is_absolute() else s for s in items if s
                )
            elif key == "exporter":
                values[key] = _listen(v, problems)
            elif key == "notify":
                values[key] = _notify(v, problems)
            elif key == "stop":
                values[key] = _stop(v, problems)
            elif key == "logs":
                values[key] = _logs(v, problems, path.parent)
            elif key == "parsers":
                values[key] = tuple(parsers_from_node(v, problems, Locator(text)))
    if isinstance(values.get("tick"), float) and not 0.005 <= float(values["tick"]) <= 10:  # type: ignore[arg-type]
        at(problems, f["tick"].value if f else root, "tick: must be between 5ms and 10s")
    problems.raise_if_any()
    return Config(**{k: v for k, v in values.items() if v is not None})  # type: ignore[arg-type]


def _notify(node: Node, problems: Problems) -> NotifyConfig | None:
    f = fields(node, problems, what="notify", allowed=("urls", "repeat"))
    if f is None:
        return None
    urls: tuple[str, ...] = ()
    repeat = NotifyConfig.repeat
    if "urls" in f:
        items = sequence(f["urls"].value, problems, what="notify.urls")
        urls = tuple(u for u in (string(n, problems, what="notify.urls[]") for n in items) if u)
    if "repeat" in f:
        node = f["repeat"].value
        never = isinstance(node, ScalarNode) and node.value == "never"
        seconds = 0.0 if never else _duration(node, problems, "notify.repeat")
        repeat = repeat if seconds is None else seconds  # (None: a problem, reported)
    return NotifyConfig(urls, repeat)


def _stop(node: Node, problems: Problems) -> StopConfig | None:
    f = fields(node, problems, what="stop", allowed=("grace", "kill_after"))
    if f is None:
        return None
    grace = StopConfig.grace
    kill: float | None = None
    if "grace" in f:
        seconds = _duration(f["grace"].value, problems, "stop.grace")
        grace = grace if seconds is None else seconds  # 0s: SIGTERM at once
    if "kill_after" in f:
        v = f["kill_after"].value
        if not (isinstance(v, ScalarNode) and v.tag == NULL_TAG):
            kill = _duration(v, problems, "stop.kill_after")
    return StopConfig(grace, kill)


def _logs(node: Node, problems: Problems, base: Path) -> tuple[LogSpec, ...]:
    out: list[LogSpec] = []
    for item in sequence(node, problems, what="logs"):
        f = fields(
            item,
            problems,
            what="logs[]",
            allowed=("path", "job", "rank", "parser", "from"),
            required=("path",),
        )
        if not f or "path" not in f:
            continue
        path = string(f["path"].value, problems, what="logs[].path")
        job = None
        if "job" in f and not _null(f["job"].value):
            job = string(f["job"].value, problems, what="logs[].job")
        rank = 0
        if "rank" in f:
            text = string(f["rank"].value, problems, what="logs[].rank") or ""
            if not text.isdigit():
                at(problems, f["rank"].value, f"logs[].rank: {text!r} is not a rank")
            else:
                rank = int(text)
        parser = "auto"
        if "parser" in f:
            parser = string(f["parser"].value, problems, what="logs[].parser") or "auto"
            if parser not in PARSERS:
                known = ", ".join(sorted(PARSERS))
                at(problems, f["parser"].value, f"logs[].parser: {parser!r} is not one of {known}")
        start = False
        if "from" in f:
            where = string(f["from"].value, problems, what="logs[].from")
            if where not in ("start", "end"):
                at(problems, f["from"].value, f"logs[].from: {where!r} is not start or end")
            start = where == "start"
        if path:
            full = path if Path(path).is_absolute() else str(base / path)
            out.append(LogSpec(full, job, rank, parser, start))
    return tuple(out)
