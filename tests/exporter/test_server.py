"""The exporter over real HTTP on loopback: scrape, swap views under a scrape, fail, close."""

from __future__ import annotations

import gzip
import threading
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sentinel import exporter
from sentinel.model.view import View
from tests.exporter.views import NOW, big_view, small_view
from tests.helpers import eventually


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, dict(resp.headers), resp.read()


@pytest.fixture
def holder() -> list[View]:
    """What the owner loop would hold: ``holder[0]`` is the current view."""
    return [small_view()]


def test_scrape_over_loopback(holder: list[View]) -> None:
    with exporter.start(lambda: holder[0], port=0) as server:
        assert server.host == "127.0.0.1" and server.port > 0
        status, headers, body = fetch(server.url)
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    text = body.decode()
    assert 'sentinel_train_loss{job="trainA",rank="0"} 0.25' in text
    assert "process_cpu_seconds_total" in text
    families = {f.name for f in text_string_to_metric_families(text)}
    assert {"sentinel_train_loss", "sentinel_alert_state", "sentinel_source_up"} <= families


def test_content_negotiation_and_compression_are_prometheus_clients(holder: list[View]) -> None:
    with exporter.start(lambda: holder[0], port=0, process_metrics=False) as server:
        _, headers, body = fetch(
            server.url,
            {"Accept": "application/openmetrics-text; version=1.0.0", "Accept-Encoding": "gzip"},
        )
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body).decode().endswith("# EOF\n")


def test_name_filters_are_served_by_prometheus_clients_app(holder: list[View]) -> None:
    with exporter.start(lambda: holder[0], port=0) as server:
        text = fetch(server.url + "?name[]=sentinel_train_loss&name[]=sentinel_rules_loaded")[2]
    names = {f.name for f in text_string_to_metric_families(text.decode())}
    assert names == {"sentinel_train_loss", "sentinel_rules_loaded"}


def test_a_view_swapped_in_mid_scrape_is_seen_whole_by_the_next_one() -> None:
    holder = [big_view(stamp=0.0, ranks=16, metrics=50)]
    stop = threading.Event()

    def owner() -> None:  # swaps a new view in as fast as it can
        i = 0
        while not stop.is_set():
            i += 1
            holder[0] = big_view(stamp=float(i), ranks=16, metrics=50)

    thread = threading.Thread(target=owner)
    thread.start()
    stamps = []
    try:
        with exporter.start(lambda: holder[0], port=0, process_metrics=False) as server:
            for _ in range(20):
                text = fetch(server.url)[2].decode()
                values = {
                    s.value
                    for f in text_string_to_metric_families(text)
                    if f.name.startswith("sentinel_train_")
                    for s in f.samples
                }
                assert len(values) == 1, "one scrape mixed two views"
                stamps.append(values.pop())
    finally:
        stop.set()
        thread.join()
    assert stamps == sorted(stamps) and stamps[-1] > stamps[0]


def test_a_failing_scrape_answers_500_and_the_server_goes_on() -> None:
    views: list[View | None] = [None]

    def current() -> View:
        if views[0] is None:
            raise RuntimeError("no view yet")
        return views[0]

    with exporter.start(current, port=0, process_metrics=False) as server:
        with pytest.raises(urllib.error.HTTPError) as info:
            fetch(server.url)
        assert info.value.code == 500
        info.value.close()
        views[0] = View(time=NOW)
        assert fetch(server.url)[0] == 200


def test_close_stops_listening_and_is_idempotent(holder: list[View]) -> None:
    server = exporter.start(lambda: holder[0], port=0, process_metrics=False)
    url = server.url
    assert fetch(url)[0] == 200
    server.close()
    server.close()
    with pytest.raises(urllib.error.URLError):
        fetch(url)
    eventually(lambda: not [t for t in threading.enumerate() if t.name == "sentinel-exporter"])


def test_ipv6_loopback(holder: list[View]) -> None:
    try:
        server = exporter.start(lambda: holder[0], port=0, addr="::1", process_metrics=False)
    except OSError as e:
        pytest.skip(f"no IPv6 loopback here: {e}")
    with server:
        assert server.url.startswith("http://[::1]:")
        assert fetch(server.url)[0] == 200
