"""``sentinel report``: the JSON report's content, and the HTML page in a real headless browser.

The browser tests need Debian's ``chromium`` (``apt-get install chromium``)
and skip, saying so, when it is absent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from sentinel.cli import main
from sentinel.hook.collapse import CollapseCollector

CLASSES, DIM = 12, 16
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary (Debian: apt-get install chromium)"
)


def _dump(tmp_path: Path, steps: int = 30) -> tuple[Path, CollapseCollector, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    means = 3 * torch.randn(CLASSES, DIM, generator=g)
    col = CollapseCollector(reservoir=500, min_samples_per_class=5, generator=g)
    labels = []
    for step in range(steps):
        # A skewed label distribution, and features that collapse as steps go by.
        y = torch.randint(0, CLASSES, (64,), generator=g) ** 2 % CLASSES
        col.update(means[y] + 0.95**step * torch.randn(64, DIM, generator=g), y)
        labels.append(y)
        if step % 5 == 4:
            col.compute(step=step)
    path = tmp_path / "collapse.pt"
    col.save(path)
    return path, col, torch.cat(labels)


def _report(tmp_path: Path, *args: str) -> dict[str, Any]:
    dump, _, _ = _dump(tmp_path)
    out = tmp_path / "out"
    assert main(["report", str(dump), "--out", str(out), *args]) == 0
    doc: dict[str, Any] = json.loads((out / "report.json").read_text())
    return doc


def test_json_report_has_summary_per_class_and_overall_metrics(tmp_path: Path) -> None:
    dump, col, labels = _dump(tmp_path)
    out = tmp_path / "out"
    assert main(["report", str(dump), "--out", str(out)]) == 0
    doc = json.loads((out / "report.json").read_text())
    assert doc["format"] == "sentinel.collapse-report/1"
    counts = torch.bincount(labels, minlength=CLASSES)
    kept = sorted((int(n) for n in counts if n >= 5), reverse=True)
    s = doc["summary"]
    assert s["total_samples"] == len(labels) and s["updates"] == 30
    assert s["classes_seen"] == int((counts > 0).sum())
    assert s["classes_analysed"] == len(kept)
    assert s["samples_per_class"]["max"] == kept[0] and s["samples_per_class"]["min"] == kept[-1]
    assert [c["samples"] for c in doc["per_class"]] == kept
    for row in doc["per_class"]:
        assert row["samples"] == int(counts[row["class"]])
    want = {k: v for k, v in col.compute().items() if not k.startswith("collapse_s")}
    want.pop("collapse_dropped")
    assert doc["overall"] == pytest.approx(want, rel=1e-9)
    spectrum = doc["spectrum"]
    assert len(spectrum) == DIM and spectrum == sorted(spectrum, reverse=True)
    assert doc["class_counts"] == sorted(doc["class_counts"], reverse=True)
    assert [h["step"] for h in doc["history"]] == [4, 9, 14, 19, 24, 29]
    assert doc["history"][-1]["nc1"] < doc["history"][0]["nc1"]  # the features collapsed
    json.loads((out / "report.json").read_text(), parse_constant=pytest.fail)  # strict JSON


def test_options_and_extra_history_are_applied(tmp_path: Path) -> None:
    extra = tmp_path / "metrics.jsonl"
    rows = [{"step": 100, "nc1": 0.5, "note": "text is ignored"}, {"step": 2, "nc1": 9.0}]
    extra.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    doc = _report(tmp_path, "--max-classes", "3", "--min-samples", "1", "--history", str(extra))
    assert doc["summary"]["classes_analysed"] == 3
    assert [h["step"] for h in doc["history"]] == [2, 4, 9, 14, 19, 24, 29, 100]
    assert doc["history"][-1] == {"step": 100, "nc1": 0.5}


def test_unreadable_dumps_are_reported_not_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a dump")
    assert main(["report", str(junk)]) == 2
    torch.save({"format": "something/else"}, tmp_path / "other.pt")
    assert main(["report", str(tmp_path / "other.pt")]) == 2
    assert "format 'something/else'" in capsys.readouterr().err
    assert not (tmp_path / "report.json").exists()


def test_an_empty_collector_still_gives_a_report(tmp_path: Path) -> None:
    CollapseCollector().save(tmp_path / "empty.pt")
    assert main(["report", str(tmp_path / "empty.pt")]) == 0
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["summary"]["total_samples"] == 0 and doc["per_class"] == []
    assert "No metric history" in (tmp_path / "report.html").read_text()


# -- the page in a browser ----------------------------------------------------------


def _chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,900",
        "--enable-logging=stderr",
        "--v=0",
        *args,
        page.resolve().as_uri(),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _console(stderr: str) -> list[str]:
    """Lines where the page wrote to the console (errors, uncaught exceptions)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@needs_chromium
def test_the_console_check_catches_a_broken_page(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><p>x</p><script>throw new Error('boom')</script>")
    assert any("boom" in line for line in _console(_chromium(tmp_path, bad, "--dump-dom").stderr))


@needs_chromium
def test_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    doc = _report(tmp_path)
    page = tmp_path / "out" / "report.html"
    html = page.read_text()
    assert "<script" not in html and "src=" not in html and "href=" not in html  # self-contained
    dom = _chromium(tmp_path, page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console(dom.stderr) == []
    metrics = {k for row in doc["history"] for k in row if k != "step"}
    assert dom.stdout.count("<svg") == len(metrics) + 2  # trajectories, spectrum, counts
    assert dom.stdout.count("<polyline") >= len(metrics) + 1
    assert dom.stdout.count('class="bar"') == len(doc["class_counts"])
    png = tmp_path / "shot.png"
    shot = _chromium(tmp_path, page, f"--screenshot={png}")
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
    with Image.open(png) as im:
        rgb = im.convert("RGB")
        assert rgb.size == (1200, 900)
        colours = rgb.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50  # text, lines and tables, not a blank page
    white = sum(n for n, c in colours if c == (255, 255, 255))
    assert white < 0.97 * 1200 * 900
