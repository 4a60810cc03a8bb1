"""/metrics carries every metric of the original NetScope under its name, type and meaning.

Parsed with prometheus_client's own parser, as a scraper would. The end-to-end checks
(values equal the summary's) are in test_http.py / test_pipeline.py.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from netscope.web.hub import Hub
from netscope.web.metrics import make_registry, render

# name on the wire → Prometheus type, from the original's metrics.rs
ORIGINAL = {
    "netscope_build_info": "gauge",
    "netscope_uptime_seconds": "gauge",
    "netscope_capture_bytes_total": "counter",
    "netscope_capture_packets_total": "counter",
    "netscope_active_flows": "gauge",
    "netscope_dispatch_drops_total": "counter",
    "netscope_kernel_drops_total": "counter",
    "netscope_kernel_if_drops_total": "counter",
}


def scrape(totals: dict[str, int]) -> tuple[dict[str, float], dict[str, str], str]:
    hub = Hub(None, 1000, "9.9.9")  # type: ignore[arg-type]  # the ring is not read here
    hub.totals = totals
    text = render(make_registry(hub)).decode()
    samples: dict[str, float] = {}
    types: dict[str, str] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            samples[s.name] = s.value
            types[s.name] = fam.type
    # the parser names an info family by its base name; what matters is the text's TYPE line
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            types[name] = kind
    return samples, types, text


def test_every_original_metric_with_its_type_and_value() -> None:
    totals = {
        "packets": 7,
        "bytes": 4321,
        "active_flows": 3,
        "dispatch_drops": 2,
        "kernel_drops": 5,
        "interface_drops": 11,
    }
    samples, types, text = scrape(totals)
    for name, kind in ORIGINAL.items():
        assert name in samples, name
        assert types[name] == kind, (name, types[name])
    assert samples["netscope_capture_packets_total"] == 7
    assert samples["netscope_capture_bytes_total"] == 4321
    assert samples["netscope_active_flows"] == 3
    assert samples["netscope_dispatch_drops_total"] == 2
    assert samples["netscope_kernel_drops_total"] == 5
    assert samples["netscope_kernel_if_drops_total"] == 11
    assert 'netscope_build_info{version="9.9.9"} 1.0' in text


def test_no_quantity_under_two_names() -> None:
    samples, _, _ = scrape({"packets": 7, "bytes": 4321, "interface_drops": 11})
    for old in (
        "netscope_captured_packets_total",
        "netscope_captured_bytes_total",
        "netscope_interface_drops_total",
    ):
        assert old not in samples
    values = [v for n, v in samples.items() if n != "netscope_uptime_seconds"]
    assert values.count(7) == 1 and values.count(4321) == 1 and values.count(11) == 1
