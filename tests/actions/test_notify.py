"""The notifier port: URLs from the environment, redaction, the log notifier, lazy Apprise."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

import sentinel
from sentinel.actions.notify import (
    AppriseNotifier,
    LogNotifier,
    NotifyKind,
    make_notifier,
    redact,
    urls_from_env,
)


def test_urls_from_env_split_on_commas_and_whitespace() -> None:
    env = {"SENTINEL_NOTIFY_URLS": " json://a:1/x, slack://t/u/v \n mailto://me@x.org,,"}
    assert urls_from_env(env) == ("json://a:1/x", "slack://t/u/v", "mailto://me@x.org")
    assert urls_from_env({}) == ()


def test_redact_keeps_webhook_hosts_and_hides_tokens() -> None:
    assert redact("json://user:pw@127.0.0.1:8080/hook?x=1") == "json://127.0.0.1:8080"
    slack = redact("slack://TokenA/TokenB/TokenC/#ops")
    assert slack.startswith("slack://…") and "Token" not in slack
    assert redact("slack://TokenA/TokenB/TokenC/#ops") == slack
    assert redact("slack://TokenX/TokenB/TokenC/#ops") != slack
    assert redact("") == "log"


def test_log_notifier_writes_the_page_to_the_sentinel_notify_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="sentinel.notify"):
        fired = LogNotifier().send("[FIRING] X", "body text", ())
        LogNotifier().send("[RESOLVED] X", "ok", (), kind=NotifyKind.SUCCESS)
    assert fired.ok and fired.targets[0].target == "log"
    assert [(r.name, r.levelname) for r in caplog.records] == [
        ("sentinel.notify", "WARNING"),
        ("sentinel.notify", "INFO"),
    ]
    assert "[FIRING] X\nbody text" in caplog.text


def test_make_notifier_falls_back_to_the_log_without_urls() -> None:
    assert isinstance(make_notifier(()), LogNotifier)
    assert isinstance(make_notifier(["json://h"]), AppriseNotifier)


def test_apprise_is_imported_only_when_the_first_page_is_sent() -> None:
    code = """
import sys
from sentinel.actions.notify import AppriseNotifier
from sentinel.actions.pager import Pager
n = AppriseNotifier()
p = Pager(n, ["json://127.0.0.1:9"], workers=1)
p.close()
assert "apprise" not in sys.modules and not n.loaded, "imported too early"
r = n.send("t", "b", ["bogus://nothing"])
assert "apprise" in sys.modules and n.loaded
print(r.targets[0].ok, r.targets[0].retryable)
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"]  # a URL Apprise cannot parse: no retry


def test_apprise_notifier_without_urls_is_a_failure_not_a_crash() -> None:
    r = AppriseNotifier().send("t", "b", ())
    assert not r.ok and not r.targets[0].retryable


def test_apprise_has_one_importer() -> None:
    root = Path(sentinel.__file__).parent
    importers = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if any(
            line.strip().startswith(("import apprise", "from apprise"))
            for line in p.read_text().splitlines()
        )
    )
    assert importers == ["actions/notify.py"]
