// The rask dashboard: live pages fed by server-sent events from
// /api/updates, or, in a performance report, by the data the report embeds
// (window.RASK_REPORT: a list of updates, oldest first).
(function () {
  "use strict";

  const REPORT = window.RASK_REPORT || null;
  const STATES = ["released", "waiting", "no-worker", "queued", "processing", "memory", "erred"];
  const STATE_COLORS = {
    released: "#cfd8dc", waiting: "#b0bec5", "no-worker": "#ff7043", queued: "#90a4ae",
    processing: "#1e88e5", memory: "#43a047", erred: "#e53935",
  };
  const STREAM_KEEP = 20000;
  const EVENTS_KEEP = 1000;
  const TRANSFER_COLOR = "#d50000";

  const st = {
    snap: null,
    stream: [],          // entries with .lane added
    events: [],          // the event log, oldest first (updates send only new lines)
    lanes: new Map(),    // worker id -> array of lane end times
    laneBase: new Map(), // worker id -> first lane index
    rate: [[], []],      // time, tasks/s
    mem: [[], [], []],   // time, memory, stored
    lastFinished: null,
    rateChart: null,
    memChart: null,
  };

  const $ = (sel) => document.querySelector(sel);
  const el = (tag, attrs, text) => {
    const e = document.createElement(tag);
    if (attrs) for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  };

  function hashColor(name) {
    let h = 0;
    for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
    return "hsl(" + (h % 360) + ", 62%, 52%)";
  }

  function bytes(n) {
    if (!n) return "0 B";
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + u[i];
  }

  function funcName(i) {
    const f = st.snap && st.snap.functions[i];
    return f ? (f.name || "(data)") : "?";
  }

  // ------------------------------------------------------------- pages
  function pageOf() {
    if (REPORT) return null;
    const p = location.pathname.replace(/^\/+/, "").split("/")[0];
    return ["status", "workers", "graph", "events"].includes(p) ? p : "status";
  }

  function showPages() {
    const page = pageOf();
    document.querySelectorAll(".page").forEach((s) => {
      const name = s.id.replace("page-", "");
      const shown = page === null ? true : name === page;
      s.classList.toggle("shown", shown);
    });
    document.querySelectorAll("nav a").forEach((a) => {
      a.classList.toggle("active", a.dataset.page === page);
      if (REPORT) a.setAttribute("href", "#page-" + a.dataset.page);
    });
  }

  // ------------------------------------------------------------ status
  function renderSummary(s) {
    const box = $("#summary");
    box.textContent = "";
    const items = [
      ["tasks", s.tasks],
      ["processing", stateCount(s, "processing")],
      ["in memory", stateCount(s, "memory")],
      ["erred", stateCount(s, "erred")],
      ["finished (total)", s.tasks_finished_total],
      ["workers", s.n_workers],
      ["clients", s.clients],
      ["event loop busy", (100 * s.busy_fraction).toFixed(1) + " %"],
      ["bytes fetched between workers", bytes(s.fetched_bytes_total)],
    ];
    for (const [k, v] of items) {
      const d = el("div");
      d.appendChild(el("b", null, String(v)));
      d.appendChild(document.createTextNode(k));
      box.appendChild(d);
    }
  }

  function stateCount(s, name) {
    for (const [k, v] of s.states) if (k === name) return v;
    return 0;
  }

  function addStream(entries) {
    for (const e of entries) {
      let ends = st.lanes.get(e.worker);
      if (!ends) { ends = []; st.lanes.set(e.worker, ends); }
      // The first lane free at the task's start; else the one free first.
      let lane = ends.findIndex((t) => t <= e.start + 1e-6);
      const threads = workerThreads(e.worker);
      if (lane < 0 && ends.length < threads) { lane = ends.length; ends.push(0); }
      if (lane < 0) { lane = ends.indexOf(Math.min(...ends)); }
      ends[lane] = e.stop;
      e.lane = lane;
      st.stream.push(e);
    }
    if (st.stream.length > STREAM_KEEP) st.stream.splice(0, st.stream.length - STREAM_KEEP);
  }

  function addEvents(lines) {
    // Each update carries the lines not sent before; skip any seen already.
    const last = st.events.length ? st.events[st.events.length - 1].seq : -1;
    for (const e of lines) if (e.seq > last) st.events.push(e);
    if (st.events.length > EVENTS_KEEP) st.events.splice(0, st.events.length - EVENTS_KEEP);
  }

  function workerThreads(id) {
    const w = st.snap && st.snap.workers.find((x) => x.id === id);
    return w ? Math.max(1, w.threads) : 1;
  }

  function renderStream() {
    const c = $("#stream");
    // Tasks and transfers between workers (drawn red) are counted apart.
    const nt = st.stream.reduce((a, e) => a + (e.transfer ? 1 : 0), 0);
    const n = st.stream.length - nt;
    const count = $("#stream-count");
    count.textContent = n + " task" + (n === 1 ? "" : "s") + " in the task stream" +
      (nt ? ", " + nt + " transfer" + (nt === 1 ? "" : "s") + " (red)" : "");
    count.dataset.count = String(n);
    count.dataset.transfers = String(nt);
    // Lanes: one per worker thread, workers by id.
    const ids = Array.from(new Set(st.stream.map((e) => e.worker).concat(
      (st.snap ? st.snap.workers : []).map((w) => w.id)))).sort((a, b) => a - b);
    let base = 0;
    st.laneBase.clear();
    for (const id of ids) {
      st.laneBase.set(id, base);
      base += Math.max(workerThreads(id), (st.lanes.get(id) || []).length);
    }
    const laneH = 14, pad = 60;
    const width = Math.max(600, c.parentElement.clientWidth || 1200);
    c.width = width;
    c.height = Math.max(40, base * laneH + 24);
    const g = c.getContext("2d");
    g.clearRect(0, 0, c.width, c.height);
    g.font = "10px sans-serif";
    g.fillStyle = "#555";
    for (const id of ids) g.fillText("worker " + id, 2, st.laneBase.get(id) * laneH + 11);
    if (!st.stream.length) { c.dataset.bars = "0"; c.dataset.transferBars = "0"; return; }
    let t1 = -Infinity;
    for (const e of st.stream) t1 = Math.max(t1, e.stop);
    let t0 = Infinity;
    for (const e of st.stream) if (e.stop >= t1 - 60) t0 = Math.min(t0, e.start);
    const span = Math.max(t1 - t0, 1e-3);
    const x = (t) => pad + ((t - t0) / span) * (width - pad - 10);
    let drawn = 0, drawnTransfers = 0;
    for (const e of st.stream) {
      if (e.stop < t0) continue;
      const y = ((st.laneBase.get(e.worker) || 0) + e.lane) * laneH + 2;
      const x0 = x(e.start), w = Math.max(2, x(e.stop) - x0);
      if (e.transfer) {
        g.fillStyle = TRANSFER_COLOR;
        g.fillRect(x0, y + 3, w, laneH - 9);
        drawnTransfers++;
        continue;
      }
      g.fillStyle = e.ok ? hashColor(funcName(e.func)) : "#000";
      g.fillRect(x0, y, w, laneH - 3);
      drawn++;
    }
    c.dataset.transferBars = String(drawnTransfers);
    g.fillStyle = "#555";
    g.fillText(t0.toFixed(3) + " s", pad, c.height - 4);
    const end = t1.toFixed(3) + " s";
    g.fillText(end, width - 10 - g.measureText(end).width, c.height - 4);
    c.dataset.bars = String(drawn);
    const legend = $("#stream-legend");
    legend.textContent = "";
    const seen = new Set(st.stream.filter((e) => !e.transfer).map((e) => e.func));
    if (nt) legend.appendChild(el("span", { style: "--c:" + TRANSFER_COLOR }, "transfer"));
    for (const f of seen) {
      const s = el("span", { style: "--c:" + hashColor(funcName(f)) }, funcName(f));
      legend.appendChild(s);
    }
  }

  function renderProgress(s) {
    const box = $("#progress");
    box.textContent = "";
    for (const f of s.functions) {
      const by = {};
      STATES.forEach((k, i) => (by[k] = f.states[i]));
      const done = f.finished_total;
      const erred = Math.max(f.erred_total, by.erred);
      const processing = by.processing;
      const waiting = by.waiting + by["no-worker"] + by.queued;
      const total = done + erred + processing + waiting;
      if (!total) continue;
      const row = el("div", { class: "bar-row", "data-function": f.name });
      row.appendChild(el("span", null, f.name || "(data)"));
      const bar = el("div", { class: "bar" });
      for (const [cls, n] of [["done", done], ["erred", erred], ["processing", processing], ["waiting", waiting]]) {
        if (n) bar.appendChild(el("div", { class: "seg-" + cls, style: "width:" + (100 * n / total) + "%", title: cls + ": " + n }));
      }
      row.appendChild(bar);
      const pct = Math.floor((100 * (done + erred)) / total);
      const label = el("span", { class: "pct", "data-done": String(done + erred), "data-total": String(total), "data-percent": String(pct) },
        (done + erred) + " / " + total + " (" + pct + " %)" + (erred ? ", " + erred + " erred" : ""));
      row.appendChild(label);
      box.appendChild(row);
    }
    if (!box.childElementCount) box.appendChild(el("p", { class: "report-note" }, "no tasks yet"));
  }

  function seconds(x) {
    if (x >= 1) return x.toFixed(2) + " s";
    if (x >= 1e-3) return (x * 1e3).toFixed(2) + " ms";
    return (x * 1e6).toFixed(1) + " µs";
  }

  function renderDurations(s) {
    const body = $("#durations tbody");
    body.textContent = "";
    for (const f of s.functions) {
      if (!f.finished_total && !f.erred_total) continue;
      // The highest non-empty bucket: an upper bound of the slowest task.
      let top = -1;
      f.buckets.forEach((n, i) => { if (n) top = i; });
      const bound = top < 0 ? "-" : top < s.duration_buckets.length ? "≤ " + seconds(s.duration_buckets[top]) : "> " + seconds(s.duration_buckets[s.duration_buckets.length - 1]);
      const tr = el("tr", { "data-function": f.name, "data-finished": String(f.finished_total) });
      for (const c of [f.name || "(data)", f.finished_total, f.erred_total,
        f.finished_total ? seconds(f.duration_sum / f.finished_total) : "-", seconds(f.duration_sum), bound]) {
        tr.appendChild(el("td", null, String(c)));
      }
      body.appendChild(tr);
    }
  }

  function chart(target, title, series, data) {
    if (typeof uPlot === "undefined") return null;
    const width = Math.max(400, (target.clientWidth || 900) - 10);
    return new uPlot({
      title: title, width: width, height: 180,
      scales: { x: { time: false } },
      axes: [{ label: "seconds since the scheduler started" }, {}],
      series: [{}].concat(series),
    }, data, target);
  }

  function renderRate(s) {
    if (st.lastFinished !== null) {
      const [t, n] = st.lastFinished;
      const dt = s.time - t;
      if (dt > 0) { st.rate[0].push(s.time); st.rate[1].push((s.tasks_finished_total - n) / dt); }
    }
    st.lastFinished = [s.time, s.tasks_finished_total];
    const rateBox = $("#rate-chart"), memBox = $("#memory-chart");
    if (!st.rateChart && rateBox.offsetParent !== null) {
      st.rateChart = chart(rateBox, "tasks finished / s", [{ label: "tasks/s", stroke: "#1e88e5" }], st.rate);
    } else if (st.rateChart) st.rateChart.setData(st.rate);
    if (s.memory) { renderMemorySamples(s.memory, memBox); return; }
    st.mem[0].push(s.time);
    st.mem[1].push(s.workers.reduce((a, w) => a + w.memory, 0));
    st.mem[2].push(s.workers.reduce((a, w) => a + w.nbytes, 0));
    for (const a of [st.rate, st.mem]) if (a[0].length > 600) a.forEach((v) => v.splice(0, v.length - 600));
    if (!st.memChart && memBox.offsetParent !== null) {
      st.memChart = chart(memBox, "all workers", [
        { label: "memory in use (heartbeats)", stroke: "#8e24aa", value: (u, v) => v == null ? "-" : bytes(v) },
        { label: "results held", stroke: "#43a047", value: (u, v) => v == null ? "-" : bytes(v) },
      ], st.mem);
    } else if (st.memChart) st.memChart.setData(st.mem);
  }

  // A performance report's worker memory over the block: one line per
  // worker, a point per heartbeat (its process's resident memory, or the
  // data it held when that is not measured).
  function renderMemorySamples(samples, box) {
    const ids = Array.from(new Set(samples.map((m) => m.worker))).sort((a, b) => a - b);
    const times = Array.from(new Set(samples.map((m) => m.time))).sort((a, b) => a - b);
    const at = new Map(times.map((t, i) => [t, i]));
    const data = [times].concat(ids.map(() => new Array(times.length).fill(null)));
    for (const m of samples) data[1 + ids.indexOf(m.worker)][at.get(m.time)] = m.process || m.managed;
    box.dataset.points = String(samples.length);
    box.dataset.workers = String(ids.length);
    box.textContent = "";
    if (!samples.length) { box.appendChild(el("p", { class: "report-note" }, "no heartbeat within the report")); return; }
    st.memChart = chart(box, "memory of each worker (heartbeats)", ids.map((id) => ({
      label: "worker " + id, stroke: hashColor("worker " + id), spanGaps: true,
      value: (u, v) => v == null ? "-" : bytes(v),
    })), data);
  }

  // ----------------------------------------------------------- workers
  function renderWorkers(s) {
    $("#workers-count").textContent = s.workers.length + " worker" + (s.workers.length === 1 ? "" : "s");
    const body = $("#workers tbody");
    body.textContent = "";
    for (const w of s.workers) {
      const tr = el("tr", { "data-worker": w.address, "data-runtime": w.runtime,
        "data-cpu": w.cpu == null ? "" : String(w.cpu) });
      const cells = [w.id, w.name, w.address, w.runtime || "?", w.threads, null, w.processing, w.executing,
        w.cpu == null ? "-" : w.cpu.toFixed(0) + " %", bytes(w.memory), w.memory_limit ? bytes(w.memory_limit) : "none",
        w.keys + " (" + bytes(w.nbytes) + ")", w.finished, w.erred, bytes(w.sent_bytes || 0), bytes(w.fetched_bytes), bytes(w.result_bytes)];
      for (const c of cells) {
        if (c === null) {
          const td = el("td", { class: "funcs", title: w.functions.join(", ") },
            w.functions.length + ": " + w.functions.slice(0, 8).join(", ") + (w.functions.length > 8 ? ", …" : ""));
          tr.appendChild(td);
        } else tr.appendChild(el("td", null, String(c)));
      }
      body.appendChild(tr);
    }
  }

  // ------------------------------------------------------------- graph
  function renderGraph(s) {
    const svg = $("#graph");
    const NS = "http://www.w3.org/2000/svg";
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const legend = $("#graph-legend");
    legend.textContent = "";
    for (const k of STATES) legend.appendChild(el("span", { style: "--c:" + STATE_COLORS[k] }, k));
    if (!s.graph) {
      $("#graph-count").textContent = "(" + s.tasks + " tasks: too many to draw)";
      svg.setAttribute("width", 10); svg.setAttribute("height", 10);
      return;
    }
    const nodes = s.graph.nodes;
    $("#graph-count").textContent = "(" + nodes.length + " live tasks)";
    // Layers: longest path from a task without dependencies.
    const depth = new Array(nodes.length).fill(-1);
    const d = (i, guard) => {
      if (depth[i] >= 0) return depth[i];
      if (guard > nodes.length) return 0;
      let m = 0;
      for (const p of nodes[i].deps) m = Math.max(m, d(p, guard + 1) + 1);
      return (depth[i] = m);
    };
    const layers = [];
    nodes.forEach((n, i) => { const k = d(i, 0); (layers[k] = layers[k] || []).push(i); });
    const pos = [];
    const colW = 150, rowH = 26;
    let maxRows = 0;
    layers.forEach((l, k) => { l.forEach((i, r) => (pos[i] = [20 + k * colW, 20 + r * rowH])); maxRows = Math.max(maxRows, l.length); });
    svg.setAttribute("width", 40 + layers.length * colW);
    svg.setAttribute("height", 40 + maxRows * rowH);
    nodes.forEach((n, i) => {
      for (const p of n.deps) {
        const line = document.createElementNS(NS, "line");
        line.setAttribute("x1", pos[p][0] + 8); line.setAttribute("y1", pos[p][1]);
        line.setAttribute("x2", pos[i][0] - 8); line.setAttribute("y2", pos[i][1]);
        line.setAttribute("stroke", "#999");
        svg.appendChild(line);
      }
    });
    nodes.forEach((n, i) => {
      const c = document.createElementNS(NS, "circle");
      c.setAttribute("cx", pos[i][0]); c.setAttribute("cy", pos[i][1]); c.setAttribute("r", 8);
      c.setAttribute("fill", STATE_COLORS[n.state] || "#999");
      c.setAttribute("class", "node");
      c.setAttribute("data-state", n.state);
      const t = document.createElementNS(NS, "title");
      t.textContent = n.key + " (" + funcName(n.func) + "): " + n.state;
      c.appendChild(t);
      svg.appendChild(c);
      const label = document.createElementNS(NS, "text");
      label.setAttribute("x", pos[i][0] + 11); label.setAttribute("y", pos[i][1] + 3);
      label.textContent = n.key.length > 20 ? n.key.slice(0, 19) + "…" : n.key;
      svg.appendChild(label);
    });
  }

  // ------------------------------------------------------------ events
  function renderEvents(s) {
    const body = $("#events tbody");
    body.textContent = "";
    for (const e of st.events.slice().reverse()) {
      const tr = el("tr");
      tr.appendChild(el("td", null, e.time.toFixed(3)));
      tr.appendChild(el("td", null, e.text));
      body.appendChild(tr);
    }
    const set = $("#settings tbody");
    set.textContent = "";
    for (const [k, v] of s.settings) {
      const tr = el("tr");
      tr.appendChild(el("th", null, k));
      tr.appendChild(el("td", null, v));
      set.appendChild(tr);
    }
  }

  function apply(u) {
    st.snap = u;
    addStream(u.stream || []);
    addEvents(u.events || []);
    renderSummary(u);
    renderStream();
    renderProgress(u);
    renderDurations(u);
    renderRate(u);
    renderWorkers(u);
    renderGraph(u);
    renderEvents(u);
  }

  showPages();
  if (REPORT) {
    $("#link-state").textContent = "performance report";
    for (const u of REPORT) apply(u);
    return;
  }
  const es = new EventSource("/api/updates");
  es.addEventListener("update", (ev) => {
    $("#link-state").textContent = "live";
    apply(JSON.parse(ev.data));
  });
  es.onerror = () => { $("#link-state").textContent = "disconnected (retrying)"; };
})();
