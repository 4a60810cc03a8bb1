"""The benchmark suite's plumbing: figures, the table, the comparison and the dpkt loop.

No timing is asserted anywhere (timings on a shared machine are too noisy for pass/fail):
these tests pin how measured values become rows, PASS/FAIL/n/a, tables and JSON, that every
benchmark module's figures land on a SPEC row, and that the dpkt loop the comparison times
computes the same per-flow counts as NetScope.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from benchmarks.common import Timing
from benchmarks.figures import FAIL, NA, PASS, Figure, at_least, at_most, format_table
from benchmarks.figures import not_measured as na

from benchmarks import (
    bench_anomaly,
    bench_bpf,
    bench_e2e_decode,
    bench_exports,
    bench_flows,
    bench_ipfix,
    bench_parse,
    bench_pipeline,
    bench_process,
    bench_startup,
    compare,
    dpkt_flows,
    suite,
    traces,
)

# ------------------------------------------------------------------ figures and the table


def test_at_most_boundaries() -> None:
    assert at_most("x", 6.0, 6.0, "ns/pkt").status == PASS
    assert at_most("x", 6.0, 6.01, "ns/pkt").status == FAIL
    assert at_most("x", 0.3, 0.3, "s", strict=True).status == FAIL
    assert at_most("x", 0.3, 0.29, "s", strict=True).status == PASS
    assert at_most("x", 6.0, 5.0, "ns/pkt").target_text == "<= 6 ns/pkt"
    assert at_most("x", 0.3, 0.1, "s", strict=True).target_text == "< 0.3 s"


def test_at_least_boundaries() -> None:
    assert at_least("x", 1.7, 1.7, "x").status == PASS
    assert at_least("x", 1.7, 1.69, "x").status == FAIL
    assert at_least("x", 29, 30, "fps", target_text="custom").target_text == "custom"


def test_not_measured_is_na_with_reason() -> None:
    f = na("dashboard", ">= 29 fps", "n/a: no chromium")
    assert f.status == NA
    assert f.passed is None
    assert f.measured == "n/a: no chromium"


def test_measured_rendering() -> None:
    assert at_most("x", 6, 22.456, "ns/pkt").measured == "22.5 ns/pkt"
    assert at_most("x", 6, 5.8123, "ns/pkt").measured == "5.81 ns/pkt"
    assert at_most("x", 200, 149.6, "ns/pkt").measured == "150 ns/pkt"
    assert at_most("x", 1, 0.0561, "s").measured == "0.056 s"
    assert at_most("x", 1, 2, "s", measured_text="two").measured == "two"


def test_format_table_columns_order_and_counts() -> None:
    rows = [
        at_most("parse_packet, 54-byte SYN", 6, 22.0, "ns/pkt"),
        at_least("pipeline, 2 workers vs inline", 1.7, 1.9, "x"),
        na("dashboard at tick_ms = 33", ">= 29 fps, p95 < 50 ms", "n/a: no chromium"),
    ]
    text = format_table(rows, title="== title")
    lines = text.splitlines()
    assert lines[0] == "== title"
    assert lines[1].split() == ["figure", "target", "measured", "status"]
    # every column starts at the same offset on every line
    starts = [lines[1].index(h) for h in ("target", "measured", "status")]
    for line, status in zip(lines[3:6], (FAIL, PASS, NA), strict=True):
        assert line.rstrip().endswith(status)
        assert line.index("<=" if "parse" in line else ">=") == starts[0]
        assert line.rindex(status) == starts[2]
    names = ("parse_packet, 54-byte SYN", "pipeline, 2 workers", "dashboard at tick_ms = 33")
    assert all(ln.startswith(n) for ln, n in zip(lines[3:6], names, strict=True))
    assert lines[-1] == "1 PASS, 1 FAIL, 1 n/a"


def test_figure_to_dict_keeps_samples() -> None:
    f = at_most("x", 6, 5, "ns/pkt", [5.0, 5.5], extra={"trace": "t.pcap"})
    d = f.to_dict()
    assert d["status"] == PASS
    assert d["samples"] == [5.0, 5.5]
    assert d["extra"] == {"trace": "t.pcap"}
    json.dumps(d)


# ------------------------------------------------------------------ SPEC rows and assembly


def test_assemble_orders_by_spec_and_fills_missing() -> None:
    names = [name for name, _ in suite.SPEC_ROWS]
    got = [
        at_most(names[3], 150, 140, "ns/pkt"),
        at_most(names[0], 6, 22, "ns/pkt"),
    ]
    table = suite.assemble(got, {names[1]: "error in parse_packet"})
    assert [f.name for f in table] == names
    assert table[0].status == FAIL and table[3].status == PASS
    assert table[1].status == NA and table[1].measured == "error in parse_packet"
    assert table[2].measured == "not measured"
    assert table[1].target_text == suite.SPEC_ROWS[1][1]


def test_assemble_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="not in SPEC_ROWS"):
        suite.assemble([at_most("typo", 1, 1, "s")], {})


def test_spec_rows_cover_the_spec() -> None:
    names = [name for name, _ in suite.SPEC_ROWS]
    assert len(names) == len(set(names)) == 23 + len(suite.EXPORT_ROWS)
    assert names[0].startswith("parse_packet") and names[20].startswith("dashboard")
    # rows of later issues: start-up beside the other start-up rows, file sets / Dask before
    # the dashboard, then IPFIX and the flow exports (Arrow, Parquet, NFStream)
    assert "start-up: one-packet file, whole process" in names[13:17]
    assert names[17].startswith("file set") and names[19].startswith("Dask merge")
    assert names[21:23] == ["IPFIX encode, 1M flows (CPU)", "IPFIX export overhead, whole process"]
    assert names[23:] == [name for name, _ in suite.EXPORT_ROWS]
    assert bench_exports.ROWS == suite.EXPORT_ROWS
    claimed = [n for rows in suite.SECTION_ROWS.values() for n in rows]
    assert sorted(claimed) == sorted(names)


def _timing(*seconds: float) -> Timing:
    return Timing(tuple(seconds))


def _fake_results() -> dict[str, Any]:
    """Results shaped like each benchmark's ``main()`` return, with made-up numbers."""
    samples = bench_anomaly.Samples((1.0, 1.1), (0.9, 1.0))
    flood = [
        bench_anomaly.FloodRow(bench_anomaly.FLOOD_ROW, samples,
                               bench_anomaly.Samples((0.12, 0.13), (0.12, 0.12))),
    ]  # fmt: skip
    return {
        "parse": [
            bench_parse.ParseResult(bench_parse.SYN_ROW, 32768, _timing(7.5e-4, 8e-4)),
            bench_parse.ParseResult(bench_parse.DATA_ROW, 32768, _timing(1e-3)),
        ],
        "flows": [
            bench_flows.FlowResult(bench_flows.EXISTING, (24.0, 26.0), 25.0),
            bench_flows.FlowResult(bench_flows.NEW, (160.0,), 150.0),
            bench_flows.FlowResult(bench_flows.EVICTING, (280.0,), 150.0),
            bench_flows.FlowResult(bench_flows.HANDSHAKE, (61.0,), 60.0),
        ],
        "bpf": [
            bench_bpf.BpfResult(bench_bpf.CACHE_RESIDENT, 4000, 38, _timing(2.5e-5)),
            bench_bpf.BpfResult(bench_bpf.STREAMED, 65536, 33, _timing(1.3e-3)),
        ],
        "e2e": bench_e2e_decode.E2EReport(
            results=[
                bench_e2e_decode.E2EResult(
                    "mixed.pcap", 2_000_000, _timing(0.8, 0.9), _timing(0.5), {}
                ),
                bench_e2e_decode.E2EResult(
                    "small.pcap", 2_000_000, _timing(0.2, 0.4), _timing(0.5), {}
                ),
            ],  # fmt: skip
            startup={bench_e2e_decode.ONE_PACKET: 0.5},
            small="small.pcap",
            reference="mixed.pcap",
        ),
        "pipeline": bench_pipeline.PipelineResult(
            (21.0, 24.0), "mixed.pcap", {0: [1.0, 1.2], 2: [0.5, 0.6]}, {}, {}
        ),
        "anomaly": bench_anomaly.AnomalyReport(
            flood, {}, {"small.pcap": (samples, samples)}, "small.pcap"
        ),
        "exports": bench_exports.ExportReport(
            1_000_000,
            _timing(0.25, 0.31),
            "mixed.pcap",
            plain=[1.0, 1.1, 1.2],
            parquet=[1.05, 1.12, 1.3],
            ours_pandas=[1.5],
            nfstream={"n_dissections=0": [6.0]},
        ),
        "process": bench_process.ProcessReport(
            _timing(0.05, 0.06),
            [bench_process.SyntheticRun(0.3, 283.0)],
            None,
            "n/a: no chromium",
        ),
        "startup": _startup_report(0.2, 0.3),
        "ipfix": {
            "encode": [0.4, 0.2],
            "process": {"netscope": [1.0, 0.9], "netscope --export-ipfix": [1.0, 0.95]},
        },
    }


def _startup_report(netscope_s: float, tshark_s: float | None) -> bench_startup.StartupReport:
    commands = {"netscope --read-pcap ONE": bench_startup.Sample((netscope_s,), (netscope_s,))}
    if tshark_s is not None:
        commands["tshark -r ONE"] = bench_startup.Sample((tshark_s,), (tshark_s,))
    return bench_startup.StartupReport(commands)


def _all_figures(r: dict[str, Any]) -> list[Figure]:
    p = r["process"]
    return [
        *bench_parse.figures(r["parse"]),
        *bench_flows.figures(r["flows"]),
        *bench_bpf.figures(r["bpf"]),
        *bench_e2e_decode.figures(r["e2e"]),
        bench_e2e_decode.warm_start_figure(r["e2e"]),
        *bench_pipeline.figures(r["pipeline"]),
        *bench_anomaly.figures(r["anomaly"]),
        bench_process.synthetic_figure(p),
        bench_process.help_figure(p),
        bench_process.cold_figure(p),
        bench_process.dashboard_figure(p),
        *bench_startup.figures(r["startup"]),
        *bench_ipfix.figures(r["ipfix"]),
        *bench_exports.figures(r["exports"]),
    ]


def status_of(by_name: dict[str, Any], name: str) -> str:
    return str(by_name[name].status)


def test_file_set_figures() -> None:
    from benchmarks import bench_filesets as bf

    figs = bf.figures(
        {
            "set": bf.SetResult(500, 2.0, {"netscope": 0.5, "tshark": 0.4, "tcpdump": 0.01}, 50),
            "dask": bf.DaskResult(8, 1100.0, 20.0, 12.0, [], 0.2),
        }
    )
    assert [f.name for f in figs] == [n for n, _ in bf.ROWS]
    # per file x500: netscope 250 s = 125x the set run; tcpdump loop 5 s > 2 s: pass
    assert figs[0].status == PASS and "125x" in figs[0].measured
    assert figs[1].measured_value == pytest.approx(20 / 12)
    assert figs[2].status == PASS


def test_every_module_fills_its_spec_rows() -> None:
    table = suite.assemble(_all_figures(_fake_results()), {})
    by_name = {f.name: f for f in table}
    assert len(by_name) == 23 + len(suite.EXPORT_ROWS)
    assert by_name["IPFIX encode, 1M flows (CPU)"].status == PASS  # best 0.2 s
    assert by_name["IPFIX export overhead, whole process"].measured_value == pytest.approx(
        (0.95 / 0.9 - 1) * 100
    )
    assert status_of(by_name, "Dask merge cost per million flows") == NA  # not in the fakes
    assert by_name["to_arrow(), 1M flows"].status == PASS  # best 0.25 s
    assert by_name["--export-parquet, whole-process overhead"].measured_value == pytest.approx(
        (1.12 / 1.1 - 1) * 100
    )
    assert by_name["analyze().to_pandas() vs NFStream to_pandas()"].measured_value == 0.25
    status = {name: f.status for name, f in by_name.items()}
    assert status["parse_packet, 54-byte SYN"] == FAIL  # 22.9 ns
    assert by_name["parse_packet, 54-byte SYN"].measured_value == pytest.approx(
        7.5e-4 / 32768 * 1e9
    )
    assert status["flow_observe, existing flow"] == PASS  # best of (24, 26)
    assert status["flow_observe, new flow (steady state)"] == FAIL
    assert status["shard_routing, 4 shards"] == FAIL
    # small trace: 2M packets in a median 0.3 s = 6.67 Mpps, but 0.6x tcpdump's 0.5 s: pass
    small = by_name["offline e2e, small packets, deep analysis"]
    assert small.status == PASS and "6.67 Mpps" in small.measured
    ref = by_name["offline e2e, reference trace, vs tcpdump"]
    assert ref.status == FAIL and ref.measured.startswith("1.70x")
    assert by_name["pipeline, 2 workers vs inline"].measured_value == pytest.approx(2.0)
    assert status["pipeline, 2 workers vs inline"] == PASS
    assert status["anomaly overhead (--anomalies), end to end"] == PASS  # same samples: +0 %
    assert status["anomaly cost per packet, spoofed SYN flood"] == FAIL  # 0.12 s / 1M = 114 ns
    assert status["offline BPF, 'tcp port 443'"] == PASS  # 6.25 ns
    assert status["1M synthetic scale-mode flows"] == FAIL  # RSS
    assert status["netscope --help"] == PASS
    assert status["warm start to first packet (1-packet file)"] == PASS
    assert status["first run after install (compiles)"] == NA
    dash = by_name["dashboard at tick_ms = 33"]
    assert dash.status == NA and dash.measured == "n/a: no chromium"


def test_missing_parts_become_na() -> None:
    r = _fake_results()
    e2e = r["e2e"]
    no_ref = bench_e2e_decode.E2EReport(e2e.results[1:], e2e.startup, "small.pcap", None)
    assert bench_e2e_decode.figures(no_ref)[1].status == NA
    assert bench_pipeline.speedup_figure(bench_pipeline.PipelineResult((20.0,))).status == NA
    no_e2e = bench_anomaly.AnomalyReport(r["anomaly"].flood, {}, {}, "small.pcap")
    assert bench_anomaly.figures(no_e2e)[0].status == NA
    run = bench_process.DashboardRun(30.0, 60.0, "line")
    p = bench_process.ProcessReport(
        _timing(0.05), [bench_process.SyntheticRun(0.3, 100)], 12.0, run
    )
    assert bench_process.dashboard_figure(p).status == FAIL  # p95 over 50 ms
    assert bench_process.cold_figure(p).status == PASS
    assert bench_process.synthetic_figure(p).status == PASS


def test_parse_synthetic_and_dashboard_lines() -> None:
    out = (
        "Synthetic flow benchmark complete.\n  Flows inserted:   1000000\n"
        "  Elapsed:          0.155s\n  RSS (estimated):  283.4 MB\n  Table memory:     131.4 MB\n"
    )
    run = bench_process.parse_synthetic(out)
    assert (run.elapsed_s, run.rss_mb) == (0.155, 283.4)
    with pytest.raises(ValueError):
        bench_process.parse_synthetic("nothing")
    line = (
        "tick_ms=33 sample_rate=0 captured 2000 pps (sent 26000) | fps mean 30.0 min 29 | "
        "latency p50 5.2 p95 20.0 p99 22.5 ms over 300 frames | dropped 1 | clock offset 0.1 ms"
    )
    dash = bench_process.parse_dashboard("noise\n" + line + "\ntarget: PASS\n")
    assert (dash.fps, dash.p95_ms, dash.line) == (30.0, 20.0, line)


# ------------------------------------------------------------------ the suite's plumbing


def test_suite_main_prints_table_and_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Sections run in order, a failing one leaves its rows n/a (exit 1), the table is last
    and ``--json`` holds every figure with its samples and the raw results."""
    fake = _fake_results()

    def boom() -> Any:
        raise RuntimeError("no trace")

    def fake_sections(args: Any) -> list[suite.Section]:
        assert args.quick
        return [
            suite.Section("parse_packet", lambda: fake["parse"], bench_parse.figures),
            suite.Section("pipeline", boom, bench_pipeline.figures),
            suite.Section("whole process", lambda: fake["process"],
                          lambda r: [bench_process.help_figure(r)]),
        ]  # fmt: skip

    monkeypatch.setattr(suite, "sections", fake_sections)
    out_json = tmp_path / "figures.json"
    assert suite.main(["--quick", "--json", str(out_json)]) == 1
    out = capsys.readouterr().out
    assert "!! section 'pipeline' failed: no trace" in out
    table = out[out.index("== SPEC §9 targets") :]
    assert table.splitlines()[1].split() == ["figure", "target", "measured", "status"]
    assert "error in pipeline" in table
    assert "   netscope src at " in table
    data = json.loads(out_json.read_text())
    assert [f["name"] for f in data["figures"]] == [n for n, _ in suite.SPEC_ROWS]
    statuses = {f["name"]: f["status"] for f in data["figures"]}
    assert statuses["parse_packet, 54-byte SYN"] == FAIL
    assert statuses["netscope --help"] == PASS
    assert statuses["shard_routing, 4 shards"] == NA
    assert data["figures"][0]["samples"]
    assert data["raw"]["parse_packet"][0]["name"] == bench_parse.SYN_ROW


def test_snapshot_of_a_commit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``--at REV`` benchmarks ``src/`` as committed, extracted once per commit."""
    monkeypatch.setattr(suite.tempfile, "gettempdir", lambda: str(tmp_path))
    try:
        sha, root = suite.snapshot_src("HEAD")
    except (OSError, suite.subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    assert root == tmp_path / "netscope-bench-src" / sha
    assert (root / "src" / "netscope" / "__init__.py").is_file()
    assert suite.snapshot_src(sha) == (sha, root)
    monkeypatch.setenv(suite.REV_ENV, sha)
    assert suite.source_description() == f"netscope src at {sha[:12]} (snapshot)"


def test_suite_options() -> None:
    args = suite.build_parser().parse_args(["--quick", "--cold", "--json", "x.json"])
    assert (args.quick, args.cold, args.json, args.no_compare) == (
        True,
        True,
        Path("x.json"),
        False,
    )


# ------------------------------------------------------------------ traces


def test_generated_trace_is_made_once(tmp_path: Path) -> None:
    path = tmp_path / "t.pcap"
    traces.ensure_generated(path, packets=300, flows=10, small_packets=True)
    stamp = path.stat().st_mtime_ns
    traces.ensure_generated(path, packets=300, flows=10, small_packets=True)
    assert path.stat().st_mtime_ns == stamp
    assert not list(tmp_path.glob("*.tmp*"))


@pytest.mark.parametrize("generator", ["netscope", "genpcap"])
def test_reference_generated_on_first_use(
    generator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if generator == "genpcap" and traces.genpcap_script() is None:
        pytest.skip("shared genpcap.py not available")
    monkeypatch.setattr(traces, "BENCH_DIR", tmp_path)
    monkeypatch.setattr(traces, "REFERENCE_PACKETS", 500)
    monkeypatch.setattr(traces, "REFERENCE_FLOWS", 20)
    path = traces.ensure_reference(generator)
    assert path.parent == tmp_path and path.stat().st_size > 0
    assert path.with_suffix(".truth.json").stat().st_size > 0
    assert traces.ensure_reference(generator) == path  # found, not regenerated
    assert compare.count_packets(path) == 500


# ------------------------------------------------------------------ the comparison


def _tiny_trace(path: Path) -> Path:
    from netscope.gen.traffic import generate

    generate(path, packets=200, flows=10, seed=3, small_packets=True)
    return path


def test_compare_runs_slow_tools_once(tmp_path: Path) -> None:
    trace = _tiny_trace(tmp_path / "tiny.pcap")
    tools = [
        compare.Tool(compare.INLINE, (sys.executable, "-c", "pass"), True),
        compare.Tool("slow", (sys.executable, "-c", "import time; time.sleep(0.4)"), False),
        compare.Tool("argv", (sys.executable, "-c", "import sys, os; "
                              "sys.exit(not os.path.isfile(sys.argv[1]))", "{trace}"), True),
    ]  # fmt: skip
    tools.append(compare.Tool("broken", (sys.executable, "-c", "raise SystemExit(3)"), True))
    c = compare.compare_trace(trace, tools, reps=3, budget_s=1.0)
    rows = {r.label: r for r in c.rows}
    assert rows["broken"].failed and rows["broken"].note == "failed (exit 3)"
    assert c.ratio(rows["broken"]) is None
    broken_line = next(ln for ln in compare.format_comparison(c).splitlines() if "broken" in ln)
    assert broken_line.split()[1:4] == ["-", "-", "n/a"]
    assert c.packets == 200
    assert len(rows[compare.INLINE].samples) == 3 and rows[compare.INLINE].note == ""
    assert len(rows["slow"].samples) == 1 and rows["slow"].note.startswith("1 run")
    assert c.ratio(rows[compare.INLINE]) == 1.0
    assert c.ratio(rows["slow"]) > 1.0


def test_format_comparison() -> None:
    rows = [
        compare.ToolResult("tcpdump -r T -w /dev/null", (0.5, 0.4, 0.6), False),
        compare.ToolResult(compare.INLINE, (1.0,), True),
        compare.ToolResult("tshark", (20.0,), True, "1 run (5 would take ~2 min)"),
    ]
    c = compare.Comparison("mixed.pcap", 2_000_000, 1_673_561_579, 5, rows)
    text = compare.format_comparison(c)
    lines = text.splitlines()
    assert "2,000,000 packets" in lines[0] and "1,674 MB" in lines[0]
    assert lines[1].split()[:2] == ["tool", "/"]
    tcpdump, inline, tshark = lines[3:6]
    assert "0.500" in tcpdump and "4.00 M" in tcpdump and "0.50x" in tcpdump
    assert tcpdump.split()[-4:] == ["no", "median", "of", "3"]
    assert "1.00x" in inline and "yes" in inline
    assert "20.00x" in tshark and tshark.endswith("1 run (5 would take ~2 min)")
    d = c.to_dict()
    assert d["rows"][2]["ratio_vs_netscope_inline"] == 20.0
    json.dumps(d)


def test_default_tools_cover_every_mode(tmp_path: Path) -> None:
    tools = compare.default_tools(tmp_path / "scale.toml")
    labels = [t.label for t in tools]
    assert compare.INLINE in labels
    for mode in ("--stats --top-flows 10", "--pipeline --workers 2", "--anomalies", "scale"):
        assert any(mode in label for label in labels), mode
    assert "dpkt loop (benchmarks/dpkt_flows.py)" in labels  # dpkt is in the test extras
    trace = Path("/x/t.pcap")
    for t in tools:
        assert str(trace) in t.command(trace)
        assert t.flow_analysis == (not t.label.startswith("tcpdump"))


# ------------------------------------------------------------------ the dpkt loop


@pytest.mark.parametrize("name", ["ndpi-reddit.pcap", "pcpp-example2.pcap"])
def test_dpkt_loop_counts_equal_netscope(
    name: str, corpus: Callable[[str], Path], cli: Callable[..., Any], tmp_path: Path
) -> None:
    """Per flow, packets and bytes in each direction: the dpkt loop and NetScope's export
    (no expiry, no cap) agree exactly on plain Ethernet IPv4 TCP/UDP captures."""
    path = corpus(name)
    export = tmp_path / "flows.json"
    res = cli(["--read-pcap", str(path), "--quiet", "--flow-timeout-s", "0", "--max-flows", "0",
               "--export-json", str(export)])  # fmt: skip
    assert res.code == 0, res.stderr
    data = json.loads(export.read_text())
    flows = data["flows"] if isinstance(data, dict) else data
    ours = {
        (
            f["protocol"],
            f["endpoint_a"]["ip"],
            f["endpoint_a"]["port"],
            f["endpoint_b"]["ip"],
            f["endpoint_b"]["port"],
        ): [f["packets_a_to_b"], f["bytes_a_to_b"], f["packets_b_to_a"], f["bytes_b_to_a"]]
        for f in flows
    }
    theirs = dpkt_flows.aggregate(path)
    assert len(theirs) > 1
    assert theirs == ours


def test_dpkt_loop_prints_table(
    corpus: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = corpus("ndpi-reddit.pcap")
    assert dpkt_flows.main([str(path), "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["proto", "endpoint", "A"]
    assert len(lines) == 5
    flows = dpkt_flows.aggregate(path)
    packets = sum(c[0] + c[2] for c in flows.values())
    assert lines[-1] == f"{len(flows)} conversations, {packets} TCP/UDP packets"


def test_startup_row_needs_the_limit_and_tshark() -> None:
    """The one-packet row passes only at or under 0.25 s *and* at or under tshark's time."""

    def status(netscope_s: float, tshark_s: float | None) -> str:
        return bench_startup.figures(_startup_report(netscope_s, tshark_s))[0].status

    assert status(0.2, 0.3) == PASS
    assert status(0.25, 0.25) == PASS
    assert status(0.2, 0.15) == FAIL  # slower than tshark
    assert status(0.3, 0.5) == FAIL  # over 0.25 s
    assert status(0.2, None) == NA  # no tshark to compare with


# ------------------------------------------------------------------ the whole suite, quick


@pytest.mark.slow
def test_quick_suite_end_to_end(tmp_path: Path) -> None:
    """``python -m benchmarks --quick --no-compare`` on freshly generated small traces: every
    benchmark module still runs against the current kernels, and the table and JSON have
    every SPEC row (~20 s once the kernels are compiled; values are not checked)."""
    env = dict(os.environ, NETSCOPE_BENCH_DIR=str(tmp_path / "bench"))
    env.pop("NUMBA_DISABLE_JIT", None)
    out_json = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--no-compare", "--json", str(out_json)],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = proc.stdout[proc.stdout.index("== SPEC §9 targets") :].splitlines()
    assert table[1].split() == ["figure", "target", "measured", "status"]
    # title, head, rule; rows; counts, source, machine
    assert len(table) == 3 + len(suite.SPEC_ROWS) + 3
    figures = json.loads(out_json.read_text())["figures"]
    assert [f["name"] for f in figures] == [n for n, _ in suite.SPEC_ROWS]
    not_run = {"first run after install (compiles)", "dashboard at tick_ms = 33"}
    not_run |= set(suite.SECTION_ROWS["file sets"])  # full suites only
    if importlib.util.find_spec("nfstream") is None:  # the bench extra, not the test one
        not_run.add(bench_exports.NFSTREAM)
    for f in figures:
        assert f["status"] == NA if f["name"] in not_run else f["status"] in (PASS, FAIL), f
    assert (tmp_path / "bench" / "quick" / "small-200k.pcap").is_file()
