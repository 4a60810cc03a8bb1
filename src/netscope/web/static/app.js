// NetScope dashboard client. Plain JS, no build step; Chart.js is served from /static/vendor.
// Frames arrive at web.tick_ms; rendering is coalesced into requestAnimationFrame so a burst
// of frames costs one DOM update, and frames are de-duplicated by frame_seq.
"use strict";

(function () {
  const PERF = new URLSearchParams(location.search).get("perf") === "1";
  const CHART_POINTS = 240;      // as the original dashboard
  const PACKET_ROWS = 500;       // as the original dashboard
  const ALERT_ROWS = 500;
  // Update rate: how often the page redraws (frames keep arriving at web.tick_ms in between
  // and are folded in). Remembered in localStorage under the original's key; ?perf=1 always
  // draws every frame ("Live").
  const UPDATE_KEY = "netscope.updateIntervalMs";
  const UPDATE_CHOICES = [1000, 500, 250, 100, 33];

  const $ = (id) => document.getElementById(id);
  const state = {
    ws: null,
    serverStarted: null,
    lastSeq: 0,
    pending: null,          // newest frame not rendered yet
    alertsTotal: 0,
    selectedId: null,
    retryMs: 500,
    tickMs: 1000,
    updateMs: 1000,
    paused: false,
    replay: null,           // hello.replay: a paced offline run (--replay-speed)
    seeking: false,
    lastRenderAt: 0,
    renderScheduled: false,
    packets: [],            // sampled packets not drawn yet (bounded by PACKET_ROWS)
    alerts: [],             // alerts not drawn yet
    chartDirty: false,
  };

  // ---------------------------------------------------------------- formatting
  const fmtNum = (v, digits) =>
    v == null ? "–" : Number(v).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
  const fmtBytes = (b) => {
    if (b < 1024) return b + " B";
    const units = ["KiB", "MiB", "GiB", "TiB"];
    let v = b / 1024, i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return v.toFixed(1) + " " + units[i];
  };
  const fmtTime = (ts) => {
    const d = new Date(ts * 1000);
    return d.toISOString().substring(11, 23);
  };
  const endpoint = (ip, port) => (ip.indexOf(":") >= 0 ? "[" + ip + "]" : ip) + ":" + port;
  function td(text, cls) {
    const el = document.createElement("td");
    el.textContent = text;
    if (cls) el.className = cls;
    return el;
  }

  // ---------------------------------------------------------------- update rate, pause
  function loadUpdateMs() {
    if (PERF) return 33;
    try {
      const stored = Number(window.localStorage.getItem(UPDATE_KEY));
      if (UPDATE_CHOICES.includes(stored)) return stored;
    } catch (e) { /* storage disabled */ }
    return 1000;
  }
  state.updateMs = loadUpdateMs();
  function syncControls() {
    const select = $("update-rate");
    select.value = String(state.updateMs);
    select.disabled = PERF;
    const btn = $("pause");
    btn.textContent = state.paused ? "Resume" : "Pause";
    btn.classList.toggle("paused", state.paused);
    btn.setAttribute("aria-pressed", state.paused ? "true" : "false");
  }
  $("update-rate").addEventListener("change", (ev) => {
    const next = Number(ev.target.value);
    if (!UPDATE_CHOICES.includes(next) || PERF) return;
    state.updateMs = next;
    try { window.localStorage.setItem(UPDATE_KEY, String(next)); } catch (e) { /* ignore */ }
    scheduleRender();
  });
  $("pause").addEventListener("click", () => {
    state.paused = !state.paused;
    syncControls();
    // a paced replay (--replay-speed) pauses at the source too: capture time stops
    if (state.replay) send({ type: "replay_control", action: state.paused ? "pause" : "resume" });
    document.dispatchEvent(new CustomEvent("netscope-pause", { detail: { paused: state.paused } }));
    if (!state.paused) scheduleRender();
  });
  syncControls();
  window.__netscopeState = state;

  // ---------------------------------------------------------------- replay (--replay-speed)
  function send(msg) {
    if (state.ws && state.ws.readyState === 1) state.ws.send(JSON.stringify(msg));
  }
  // The seek bar spans the capture's time (hello.replay.start/end, seconds); it only moves
  // forward: a seek fast-forwards, processing every packet on the way (flows stay exact).
  function showReplay(replay) {
    state.replay = replay;
    const bar = $("replay");
    if (!replay) { bar.hidden = true; return; }
    bar.hidden = false;
    $("replay-speed").textContent = "replay ×" + replay.speed + (replay.paused ? " · paused" : "");
    const seek = $("seek");
    const span = replay.start != null && replay.end != null ? replay.end - replay.start : null;
    seek.disabled = !span;
    if (span && replay.position != null && !state.seeking) {
      seek.value = String(Math.round(((replay.position - replay.start) / span) * 1000));
    }
    $("replay-pos").textContent = replay.position == null ? "–" : fmtTime(replay.position) + " UTC";
  }
  $("seek").addEventListener("input", () => { state.seeking = true; });
  $("seek").addEventListener("change", (ev) => {
    state.seeking = false;
    const r = state.replay;
    if (!r || r.start == null || r.end == null) return;
    const to = r.start + (Number(ev.target.value) / 1000) * (r.end - r.start);
    send({ type: "replay_control", action: "seek", to: to });
  });

  // ---------------------------------------------------------------- chart
  let chart = null;
  if (window.Chart) {
    chart = new window.Chart($("chart"), {
      type: "line",
      data: {
        labels: [],
        datasets: [
          { label: "Mbps", data: [], borderColor: "#4fb3ff", backgroundColor: "rgba(79,179,255,.15)",
            fill: true, yAxisID: "y", pointRadius: 0, borderWidth: 1.5, tension: 0.2 },
          { label: "pps", data: [], borderColor: "#7ee081", yAxisID: "y1", pointRadius: 0,
            borderWidth: 1.5, tension: 0.2 },
        ],
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { ticks: { color: "#8a96a3", maxTicksLimit: 8 }, grid: { color: "#2a3440" } },
          y: { position: "left", beginAtZero: true, title: { display: true, text: "Mbps", color: "#4fb3ff" },
               ticks: { color: "#8a96a3" }, grid: { color: "#2a3440" } },
          y1: { position: "right", beginAtZero: true, title: { display: true, text: "pps", color: "#7ee081" },
                ticks: { color: "#8a96a3" }, grid: { drawOnChartArea: false } },
        },
        plugins: { legend: { labels: { color: "#d8dee6" } } },
      },
    });
  }
  window.__netscopeChart = chart;

  // ---------------------------------------------------------------- perf overlay
  const perf = {
    offset: 0,               // server clock - client clock (ms), from ping/pong
    rtt: null,
    renders: [],             // render timestamps (ms) in the last second
    latencies: [],           // last 1000 render latencies (ms)
    dropped: 0,              // frames skipped (seq gaps) or superseded before render
    frames: 0,
  };
  window.__netscopePerf = perf;
  function percentile(sorted, p) {
    if (!sorted.length) return null;
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
  }
  perf.summary = function () {
    const now = performance.now();
    while (perf.renders.length && now - perf.renders[0] > 1000) perf.renders.shift();
    const sorted = perf.latencies.slice().sort((a, b) => a - b);
    return {
      fps: perf.renders.length,
      p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99),
      dropped: perf.dropped, frames: perf.frames, offset: perf.offset, rtt: perf.rtt,
      samples: sorted.length,
    };
  };
  function sendPing() {
    if (state.ws && state.ws.readyState === 1) {
      state.ws.send(JSON.stringify({ type: "perf_ping", client_ts: Date.now() }));
    }
  }
  function drawPerf() {
    const s = perf.summary();
    const f = (v) => (v == null ? "–" : v.toFixed(1));
    $("perf").textContent =
      "fps      " + s.fps + "\n" +
      "latency  p50 " + f(s.p50) + "  p95 " + f(s.p95) + "  p99 " + f(s.p99) + " ms\n" +
      "dropped  " + s.dropped + " of " + (s.frames + s.dropped) + "\n" +
      "clock    offset " + f(s.offset) + " ms, rtt " + f(s.rtt) + " ms";
  }
  if (PERF) {
    $("perf").hidden = false;
    setInterval(sendPing, 1000);
    setInterval(drawPerf, 250);
  }

  // ---------------------------------------------------------------- rendering
  function renderCards(tick) {
    $("card-mbps").textContent = fmtNum(tick.mbps, 2);
    $("card-pps").textContent = fmtNum(tick.pps, 0);
    $("card-flows").textContent = fmtNum(tick.active_flows, 0);
    const k = tick.kernel_drops_total || 0, i = tick.kernel_if_drops_total || 0, d = tick.dispatch_drops_total || 0;
    $("card-drops").textContent = fmtNum(k + i + d, 0);
    $("card-drops-detail").textContent = "kernel " + k + " · if " + i + " · dispatch " + d;
  }

  function pushPoint(ts, mbps, pps) {
    const data = chart.data;
    // sub-second ticks get tenths in the axis labels
    data.labels.push(fmtTime(ts).substring(0, state.tickMs < 1000 ? 10 : 8));
    data.datasets[0].data.push(mbps);
    data.datasets[1].data.push(pps);
    if (data.labels.length > CHART_POINTS) {
      data.labels.shift();
      data.datasets[0].data.shift();
      data.datasets[1].data.shift();
    }
  }

  function renderChart() {
    if (!chart || !state.chartDirty) return;
    state.chartDirty = false;
    chart.update("none");
  }

  // hello.history: the ticks before the latest frame, so a late page starts with a chart.
  function fillHistory(history) {
    if (!chart || !history || chart.data.labels.length) return;
    for (const [ts, mbps, pps] of history) pushPoint(ts, mbps, pps);
    chart.update("none");
  }

  function renderFlows(flows) {
    const body = document.createElement("tbody");
    flows.forEach((f, n) => {
      const tr = document.createElement("tr");
      tr.append(
        td(String(n + 1)), td(f.protocol), td(endpoint(f.src_ip, f.src_port)), td(endpoint(f.dst_ip, f.dst_port)),
        td(fmtNum(f.delta_mbps, 3), "num"), td(fmtBytes(f.bytes_total), "num"), td(fmtNum(f.packets_total, 0), "num"),
        td(f.tcp_state || "–"), td(f.rtt_ewma_ms == null ? "–" : f.rtt_ewma_ms.toFixed(2), "num"),
        td(String(f.retransmissions), "num"), td(String(f.out_of_order), "num"),
        td(f.community_id || "–", "cid"));
      body.appendChild(tr);
    });
    const table = $("flows");
    table.replaceChild(body, table.tBodies[0]);
  }

  function renderPackets() {
    const packets = state.packets;
    state.packets = [];
    if (!packets.length) return;
    const tbody = $("packets").tBodies[0];
    const frag = document.createDocumentFragment();
    const start = Math.max(0, packets.length - PACKET_ROWS);
    for (let n = packets.length - 1; n >= start; n--) {
      const p = packets[n];
      const tr = document.createElement("tr");
      tr.dataset.id = p.id;
      if (p.id === state.selectedId) tr.className = "selected";
      tr.append(td(String(p.id), "num"), td(fmtTime(p.ts)), td(p.protocol), td(p.src), td(p.dst),
        td(String(p.len), "num"), td(p.info, "info"));
      frag.appendChild(tr);
    }
    tbody.insertBefore(frag, tbody.firstChild);
    while (tbody.rows.length > PACKET_ROWS) tbody.deleteRow(-1);
  }

  function renderAlerts() {
    const alerts = state.alerts;
    state.alerts = [];
    if (!alerts.length) return;
    const list = $("alerts");
    const empty = list.querySelector(".empty");
    if (empty) empty.remove();
    for (const a of alerts) {
      const li = document.createElement("li");
      const kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = a.kind;
      const ts = document.createElement("span");
      ts.className = "ts";
      ts.textContent = a.ts ? fmtTime(a.ts) : "";
      li.append(ts, kind, document.createTextNode(a.description || ""));
      list.insertBefore(li, list.firstChild);
    }
    while (list.children.length > ALERT_ROWS) list.lastChild.remove();
    state.alertsTotal += alerts.length;
    $("card-alerts").textContent = String(state.alertsTotal);
    $("card-alerts").parentElement.classList.add("hot");
    const badge = $("alert-badge");
    badge.hidden = false;
    badge.textContent = String(state.alertsTotal);
  }

  function scheduleRender() {
    if (state.paused || state.renderScheduled || !state.pending) return;
    state.renderScheduled = true;
    const wait = state.updateMs - (performance.now() - state.lastRenderAt);
    const go = () => requestAnimationFrame(render);
    if (wait > 4) setTimeout(go, wait); else go();
  }

  function render() {
    state.renderScheduled = false;
    if (state.paused) return; // frozen: frames keep arriving; resume draws the latest
    const frame = state.pending;
    state.pending = null;
    if (!frame) return;
    state.lastRenderAt = performance.now();
    const tick = frame.tick;
    renderCards(tick);
    renderChart();
    renderFlows(tick.top_flows || []);
    renderPackets();
    renderAlerts();
    if (frame.source) showSource(frame.source);
    if (frame.replay) showReplay(frame.replay);
    $("meta").textContent = "frame " + frame.frame_seq + " · tick " + fmtNum(tick.interval_ms, 0) +
      " ms · capture time " + fmtTime(tick.ts) + " UTC";
    perf.frames++;
    perf.renders.push(performance.now());
    const latency = Date.now() + perf.offset - tick.server_ts;
    perf.latencies.push(latency);
    if (perf.latencies.length > 1000) perf.latencies.shift();
  }

  function onFrame(frame) {
    const seq = frame.frame_seq;
    if (seq <= state.lastSeq) return; // duplicate or stale (e.g. re-sent after reconnect)
    if (state.lastSeq && seq > state.lastSeq + 1) perf.dropped += seq - state.lastSeq - 1;
    state.lastSeq = seq;
    // Everything a frame carries is kept until the next draw, whatever the update rate or
    // a pause: alerts are never coalesced away, chart points are one per tick, packets the
    // newest PACKET_ROWS (bounded: a hidden or paused tab may not draw for minutes).
    if (frame.alerts && frame.alerts.length) state.alerts = state.alerts.concat(frame.alerts).slice(-ALERT_ROWS);
    if (chart && frame.tick) { pushPoint(frame.tick.ts, frame.tick.mbps, frame.tick.pps); state.chartDirty = true; }
    if (frame.packets && frame.packets.length) state.packets = state.packets.concat(frame.packets).slice(-PACKET_ROWS);
    if (state.pending) perf.dropped++;
    state.pending = frame;
    scheduleRender();
  }

  // ---------------------------------------------------------------- inspector
  function showDetail(msg) {
    if (msg.id !== state.selectedId) return;
    $("inspector-id").textContent = "packet #" + msg.id +
      (msg.error ? " — " + msg.error : " · " + msg.len + " bytes on wire, " + msg.stored + " stored");
    const box = $("layers");
    box.textContent = "";
    for (const layer of msg.layers || []) {
      const det = document.createElement("details");
      det.open = true;
      const sum = document.createElement("summary");
      sum.textContent = layer.name;
      const dl = document.createElement("dl");
      for (const [k, v] of layer.fields) {
        const dt = document.createElement("dt");
        dt.textContent = k;
        const dd = document.createElement("dd");
        dd.textContent = v;
        dl.append(dt, dd);
      }
      det.append(sum, dl);
      box.appendChild(det);
    }
    $("hex").textContent = msg.hex_dump || "";
  }
  $("packets").addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr");
    if (!tr || !tr.dataset.id) return;
    const prev = $("packets").querySelector("tr.selected");
    if (prev) prev.classList.remove("selected");
    tr.classList.add("selected");
    state.selectedId = Number(tr.dataset.id);
    $("inspector-id").textContent = "packet #" + state.selectedId + " · loading…";
    if (state.ws && state.ws.readyState === 1) {
      state.ws.send(JSON.stringify({ type: "get_packet_detail", id: state.selectedId }));
    }
  });

  // ---------------------------------------------------------------- tabs
  document.querySelectorAll(".tab").forEach((btn) => btn.addEventListener("click", () => {
    document.querySelectorAll(".tab").forEach((b) => b.classList.toggle("active", b === btn));
    $("pane-packets").hidden = btn.dataset.tab !== "packets";
    $("pane-alerts").hidden = btn.dataset.tab !== "alerts";
  }));

  // ---------------------------------------------------------------- connection
  // The header's input: a live interface, or a file being read / finished.
  function showSource(source) {
    const el = $("source");
    el.dataset.kind = source.kind;
    el.dataset.state = source.state;
    el.textContent = (source.kind === "file" ? "file " : "interface ") + source.name + " · " + source.state;
  }
  function setStatus(kind, text) {
    $("status").dataset.state = kind;
    $("status-text").textContent = text;
  }
  function connect() {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
    const ws = new WebSocket(url);
    state.ws = ws;
    setStatus("connecting", "connecting…");
    ws.onopen = () => { state.retryMs = 500; if (PERF) sendPing(); };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      switch (msg.type) {
        case "frame": onFrame(msg); break;
        case "hello":
          if (state.serverStarted !== msg.started) { state.lastSeq = 0; state.serverStarted = msg.started; }
          state.tickMs = msg.tick_ms;
          setStatus("connected", "connected · v" + msg.version + " · tick " + msg.tick_ms + " ms");
          if (msg.source) showSource(msg.source);
          showReplay(msg.replay || null);
          if (!state.alertsTotal && msg.recent_alerts && msg.recent_alerts.length) {
            state.alerts = msg.recent_alerts.slice(-ALERT_ROWS);
            renderAlerts();
          }
          fillHistory(msg.history);
          break;
        case "packet_detail": showDetail(msg); break;
        case "error": console.warn("dashboard server refused a message: " + msg.message); break;
        case "replay_state": showReplay(msg.replay); break;
        case "perf_pong": {
          const now = Date.now();
          perf.rtt = now - msg.client_ts;
          perf.offset = msg.server_ts - (msg.client_ts + now) / 2;
          break;
        }
      }
    };
    ws.onclose = () => {
      state.ws = null;
      setStatus("offline", "disconnected · retrying in " + (state.retryMs / 1000).toFixed(1) + " s");
      setTimeout(connect, state.retryMs);
      state.retryMs = Math.min(state.retryMs * 2, 5000);
    };
  }
  connect();
})();
