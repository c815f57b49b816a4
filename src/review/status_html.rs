//! `status --format html`: one self-contained page, a row per instance with
//! its last valid backup, its age and a strip of the last 30 days (a cell a
//! day: valid, only failed, none), drawn by the browser from embedded JSON.

use crate::review::html::{script_safe_json, text_escape};
use crate::review::status::InstanceStatus;

const PAGE: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>quiesce status @NOW@</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; }
th, td { padding: 4px 8px; text-align: left; }
td.strip { white-space: nowrap; }
span.day { display: inline-block; width: 10px; height: 16px; margin-right: 1px; background: #e4e4e4; }
span.day.valid { background: #2e7d32; }
span.day.failed { background: #c62828; }
tr.finding td.status { color: #c62828; font-weight: 600; }
</style>
</head>
<body>
<h1>Backups per instance, as of @NOW@ (UTC)</h1>
<p>Each strip is the last 30 days, oldest on the left: green a valid backup that day, red only failed or invalid ones, grey none.</p>
<table id="status"><thead><tr><th>host</th><th>instance</th><th>last valid</th><th>age</th><th>by</th><th>last 30 days</th><th>status</th></tr></thead><tbody></tbody></table>
<script>
const data = @DATA@;
const body = document.querySelector("#status tbody");
const cell = (row, text, cls) => { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; row.appendChild(td); return td; };
const hours = ms => ms == null ? "-" : (ms / 3600000).toFixed(1) + " h";
for (const s of data.instances) {
  const row = document.createElement("tr");
  row.className = s.finding ? "finding" : "ok";
  row.dataset.instance = s.host + "/" + s.instance;
  cell(row, s.host);
  cell(row, s.instance);
  cell(row, s.last_valid == null ? "-" : new Date(s.last_valid).toISOString().slice(0, 19) + "Z");
  cell(row, hours(s.age_ms));
  const newest = s.backups.find(b => b.valid);
  cell(row, newest ? newest.by : "-");
  const strip = cell(row, "", "strip");
  [...s.days].forEach((mark, i) => {
    const day = document.createElement("span");
    day.className = "day" + (mark === "v" ? " valid" : mark === "x" ? " failed" : "");
    day.dataset.instance = s.host + "/" + s.instance;
    day.title = (data.days - 1 - i) + " day(s) ago";
    strip.appendChild(day);
  });
  cell(row, s.finding ? "FINDING: " + s.finding : "ok", "status");
  body.appendChild(row);
}
</script>
</body>
</html>
"##;

pub fn page(statuses: &[InstanceStatus], now: &str) -> String {
    #[derive(serde::Serialize)]
    struct Data<'a> {
        days: u64,
        instances: &'a [InstanceStatus],
    }
    PAGE.replace("@NOW@", &text_escape(now)).replacen(
        "@DATA@",
        &script_safe_json(&Data {
            days: crate::review::status::DAYS,
            instances: statuses,
        }),
        1,
    )
}
