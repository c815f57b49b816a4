//! The run report as one self-contained HTML page: the data embedded as JSON,
//! a timeline drawn by inline script (a row per VM and instance, bars for the
//! freeze window, the snapshot and the stun, mirror members grouped) and a
//! stun-against-QoS panel with the limit drawn. No file or network access.

use crate::review::run_report::RunReport;

const PAGE: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>quiesce run @RUN@</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2330; }
h1 { font-size: 20px; margin: 0 0 4px; }
.summary { color: #4a5468; margin-bottom: 16px; }
svg text { font: 12px system-ui, sans-serif; fill: #1d2330; }
svg .lane-label { font-weight: 600; fill: #3b4a6b; }
svg .axis { stroke: #c5cad6; }
svg .freeze { fill: #3b7dd8; }
svg .freeze.invalid, svg .freeze.failed { fill: #d8543b; }
svg .freeze.left-frozen { fill: #8b0000; }
svg .snapshot { fill: #9cc3f5; }
svg .stun { fill: #f29d38; }
svg .instance-window { fill: #6aa84f; }
svg .qos-limit { stroke: #d8543b; stroke-width: 2; }
svg .qos-half { stroke: #f29d38; stroke-dasharray: 4 3; }
svg .stun-qos { fill: #f29d38; }
table { border-collapse: collapse; margin-top: 16px; }
td, th { border: 1px solid #d5d9e2; padding: 3px 8px; text-align: left; font-size: 12px; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; }
</style>
</head>
<body>
<h1>quiesce run <span id="run-id"></span></h1>
<div class="summary" id="summary"></div>
<div class="legend"><span><i style="background:#3b7dd8"></i>frozen (controller)</span><span><i style="background:#6aa84f"></i>suspended (instance log)</span><span><i style="background:#9cc3f5"></i>snapshot</span><span><i style="background:#f29d38"></i>VM stun</span><span><i style="background:#d8543b"></i>invalid or failed</span></div>
<h2>Timeline</h2>
<svg id="timeline" xmlns="http://www.w3.org/2000/svg"></svg>
<h2>VM stun against the mirror's QoS timeout</h2>
<svg id="qos" xmlns="http://www.w3.org/2000/svg"></svg>
<h2>Instances</h2>
<table id="instances"><thead><tr><th>host</th><th>instance</th><th>suspended</th><th>resumed</th><th>window</th><th>journal file</th><th>marker offset</th><th>valid</th><th>warnings</th></tr></thead><tbody></tbody></table>
<script type="application/json" id="data">@DATA@</script>
<script>
(function () {
  const data = JSON.parse(document.getElementById("data").textContent);
  const NS = "http://www.w3.org/2000/svg";
  const el = (parent, name, attrs, text) => {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    parent.appendChild(e);
    return e;
  };
  const clock = ms => new Date(ms).toISOString().substring(11, 23);
  const secs = ms => ms == null ? "-" : (ms / 1000).toFixed(3) + " s";
  document.getElementById("run-id").textContent = data.run_id + " (" + data.playbook + ")";
  const s = data.summary;
  document.getElementById("summary").textContent = data.hosts.length + " hosts, " + s.instances + " instances. Freeze window (controller): max " + secs(s.max_host_window_ms) + ", median " + secs(s.median_host_window_ms) + ", p95 " + secs(s.p95_host_window_ms) + ". From the instance logs: max " + secs(s.max_window_ms) + ", median " + secs(s.median_window_ms) + ", p95 " + secs(s.p95_window_ms) + ". Times are UTC.";

  // Timeline
  const hosts = data.hosts;
  const times = [];
  hosts.forEach(h => { ["freeze_started", "thawed_at", "thaw_started"].forEach(k => { if (h[k] != null) times.push(h[k]); }); });
  const t0 = Math.min(...times), t1 = Math.max(...times);
  const span = Math.max(t1 - t0, 1);
  const LEFT = 220, WIDTH = 760, ROW = 20;
    const x = t => LEFT + Math.min(Math.max((t - t0) / span, 0), 1) * WIDTH;
  const svg = document.getElementById("timeline");
  let y = 28;
  el(svg, "line", { class: "axis", x1: LEFT, y1: 18, x2: LEFT + WIDTH, y2: 18 });
  el(svg, "text", { class: "tick", x: LEFT, y: 12 }, clock(t0));
  el(svg, "text", { class: "tick", x: LEFT + WIDTH, y: 12, "text-anchor": "end" }, clock(t1));
  const lanes = [];
  hosts.forEach(h => { if (!lanes.includes(h.lane)) lanes.push(h.lane); });
  lanes.forEach(lane => {
    const members = hosts.filter(h => h.lane === lane);
    const mirror = members.some(h => h.qos_timeout_ms != null);
    el(svg, "text", { class: "lane-label", "data-lane": lane, x: 4, y: y + 13 }, (mirror ? "mirror " : members.length > 1 ? "group " : "") + lane);
    y += ROW;
    members.forEach(h => {
      const outcome = h.outcome;
      el(svg, "text", { class: "row-label", "data-host": h.host, x: 16, y: y + 13 }, h.host + (h.role && h.role.role !== "not-member" ? " (" + h.role.role + ")" : ""));
      if (h.freeze_started != null && (h.thawed_at != null || h.thaw_started != null)) {
        const end = h.thawed_at != null ? h.thawed_at : h.thaw_started;
        el(svg, "rect", { class: "freeze " + outcome, "data-host": h.host, x: x(h.freeze_started), y: y + 3, width: Math.max(x(end) - x(h.freeze_started), 1), height: ROW - 6 },).appendChild(document.createElementNS(NS, "title")).textContent = h.host + " frozen " + secs(end - h.freeze_started);
      }
      if (h.snapshot_started != null && h.snapshot_finished != null) {
        el(svg, "rect", { class: "snapshot", "data-host": h.host, x: x(h.snapshot_started), y: y + 7, width: Math.max(x(h.snapshot_finished) - x(h.snapshot_started), 1), height: ROW - 14 });
      }
      if (h.stun_us != null && h.snapshot_finished != null) {
        const stunMs = h.stun_us / 1000;
        el(svg, "rect", { class: "stun", "data-host": h.host, x: x(h.snapshot_finished - stunMs), y: y + 5, width: Math.max(x(h.snapshot_finished) - x(h.snapshot_finished - stunMs), 2), height: ROW - 10 });
      }
      y += ROW;
      h.instances.forEach(i => {
        el(svg, "text", { class: "instance-label", "data-host": h.host, "data-instance": i.instance, x: 32, y: y + 13 }, i.instance);
                if (i.suspended != null && i.resumed != null) {
          // The LogFile has whole seconds: the instance was suspended within
          // [suspended, resumed + 1 s), and within the controller's window.
          const from = Math.max(i.suspended, h.freeze_started != null ? h.freeze_started : i.suspended);
          const to = Math.min(i.resumed + 999, h.thawed_at != null ? h.thawed_at : i.resumed + 999);
          if (to >= from) {
            el(svg, "rect", { class: "instance-window" + (i.valid ? "" : " invalid"), "data-host": h.host, "data-instance": i.instance, x: x(from), y: y + 5, width: Math.max(x(to) - x(from), 2), height: ROW - 10 }).appendChild(document.createElementNS(NS, "title")).textContent = i.instance + ": suspended " + clock(i.suspended).substring(0, 8) + ", resumed " + clock(i.resumed).substring(0, 8) + " (the LogFile has whole seconds)";
          }
        }
        y += ROW;
      });
    });
    y += 6;
  });
  svg.setAttribute("width", LEFT + WIDTH + 20);
  svg.setAttribute("height", y + 4);

  // Stun against QoS, mirror members only.
  const qos = document.getElementById("qos");
  const QW = 500;
  let qy = 8;
  lanes.forEach(lane => {
    const members = hosts.filter(h => h.lane === lane && h.qos_timeout_ms != null);
    if (!members.length) return;
    const limit = members[0].qos_timeout_ms;
    el(qos, "text", { class: "lane-label", "data-lane": lane, x: 4, y: qy + 13 }, "mirror " + lane + ": QoS timeout " + secs(limit));
    qy += ROW;
    const top = qy;
    members.forEach(h => {
      const stun = h.stun_us == null ? 0 : h.stun_us / 1000;
      el(qos, "text", { class: "row-label", "data-host": h.host, x: 16, y: qy + 13 }, h.host);
      el(qos, "rect", { class: "stun-qos", "data-host": h.host, x: LEFT, y: qy + 4, width: Math.max(Math.min(stun / limit, 1.2) * QW, 1), height: ROW - 8 });
      el(qos, "text", { class: "stun-value", "data-host": h.host, x: LEFT + QW + 12, y: qy + 13 }, "stun " + secs(stun) + " (" + (stun / limit * 100).toFixed(1) + "% of QoS)");
      qy += ROW;
    });
    el(qos, "line", { class: "qos-half", "data-lane": lane, x1: LEFT + QW / 2, y1: top, x2: LEFT + QW / 2, y2: qy });
    el(qos, "line", { class: "qos-limit", "data-lane": lane, x1: LEFT + QW, y1: top, x2: LEFT + QW, y2: qy });
    el(qos, "text", { class: "qos-label", x: LEFT + QW, y: top - 2, "text-anchor": "middle" }, "QoS " + secs(limit));
    qy += 10;
  });
  qos.setAttribute("width", LEFT + QW + 260);
  qos.setAttribute("height", qy + 4);

  // Table
  const body = document.querySelector("#instances tbody");
  hosts.forEach(h => h.instances.forEach(i => {
    const tr = document.createElement("tr");
    [h.host, i.instance, i.suspended == null ? "-" : clock(i.suspended), i.resumed == null ? "-" : clock(i.resumed), secs(i.window_ms), i.journal_file || "-", i.marker_offset == null ? "-" : i.marker_offset, i.valid ? "yes" : "NO", (i.warnings || []).join("; ")].forEach(v => {
      const td = document.createElement("td");
      td.textContent = v;
      tr.appendChild(td);
    });
    body.appendChild(tr);
  }));
})();
</script>
</body>
</html>
"##;

/// `<`, `>` and `&` escaped so the JSON cannot close the script element.
/// JSON that may stand inside a `<script>` element.
pub fn script_safe_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|_| "{}".into())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

pub fn text_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn page(report: &RunReport) -> String {
    PAGE.replacen("@RUN@", &text_escape(&report.run_id), 1)
        .replacen("@DATA@", &script_safe_json(report), 1)
}
