// The rps page: fetches /forecast, /model, /drift and /verification from the same
// server and draws them. No libraries, nothing from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const fmt = (x, d = 1) => (x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(d));
const svgNs = "http://www.w3.org/2000/svg";
const pct = (level) => Math.round(level * 1000) / 10;

function el(tag, attrs = {}, text) {
  const e = document.createElementNS(svgNs, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

async function getJson(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const msg = body.error ? body.error.message : `${path} answered ${r.status}`;
    throw new Error(msg);
  }
  return body;
}

function setStatus(text, error = false) {
  const s = $("status");
  s.textContent = text;
  s.className = error ? "error" : "";
}

function drawChart(fc) {
  const svg = $("chart");
  svg.replaceChildren();
  const W = 900, H = 340, L = 48, R = 16, T = 16, B = 36;
  const toMs = (t) => Date.parse(t + ":00Z");
  const obs = fc.observations.filter((o) => o.temperature_2m !== null);
  const pts = obs.map((o) => [toMs(o.time), o.temperature_2m]);
  const fpts = fc.forecasts.map((f) => [toMs(f.time), f.temperature_2m]);
  // The prediction intervals, widest first (drawn under the narrower): one band per level.
  const levels = [...new Set(fc.forecasts.flatMap((f) => (f.intervals || []).map((i) => i.level)))].sort((a, b) => b - a);
  const bands = levels.map((level) => ({
    level,
    points: fc.forecasts.flatMap((f) => (f.intervals || []).filter((i) => i.level === level).map((i) => [toMs(f.time), i.lower, i.upper])),
  })).filter((b) => b.points.length === fpts.length);
  const all = pts.concat(fpts, bands.flatMap((b) => b.points.flatMap((p) => [[p[0], p[1]], [p[0], p[2]]])));
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  let y0 = Math.floor(Math.min(...ys) - 1), y1 = Math.ceil(Math.max(...ys) + 1);
  if (y1 - y0 < 4) { y0 -= 2; y1 += 2; }
  const sx = (x) => L + ((x - x0) / Math.max(1, x1 - x0)) * (W - L - R);
  const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const step = Math.max(1, Math.round((y1 - y0) / 6));
  for (let y = Math.ceil(y0); y <= y1; y += step) {
    svg.append(el("line", { class: "grid", x1: L, x2: W - R, y1: sy(y), y2: sy(y) }));
    svg.append(el("text", { class: "axis", x: L - 8, y: sy(y) + 4, "text-anchor": "end" }, `${y}°`));
  }
  for (let x = x0; x <= x1; x += 6 * 3600e3) {
    const d = new Date(x);
    const label = `${String(d.getUTCDate()).padStart(2, "0")} ${String(d.getUTCHours()).padStart(2, "0")}:00`;
    svg.append(el("text", { class: "axis", x: sx(x), y: H - 12, "text-anchor": "middle" }, label));
  }
  const path = (p) => p.map((q, i) => `${i ? "L" : "M"}${sx(q[0]).toFixed(1)},${sy(q[1]).toFixed(1)}`).join("");
  svg.append(el("path", { class: "obs-line", d: path(pts) }));
  const last = pts[pts.length - 1];
  for (const [i, b] of bands.entries()) {
    const upper = b.points.map((p) => [p[0], p[2]]), lower = b.points.map((p) => [p[0], p[1]]).reverse();
    const band = el("path", { class: `band band-${i}`, d: path([last].concat(upper, lower)) + "Z", "data-level": b.level });
    band.append(el("title", {}, `${pct(b.level)}% prediction interval`));
    svg.append(band);
  }
  svg.dataset.intervalBands = String(bands.length);
  svg.append(el("path", { class: "fc-line", d: path([last].concat(fpts)) }));
  svg.append(el("line", { class: "now", x1: sx(last[0]), x2: sx(last[0]), y1: T, y2: H - B }));
  for (const [i, f] of fpts.entries()) {
    const c = el("circle", { class: "forecast-point", cx: sx(f[0]), cy: sy(f[1]), r: 5, "data-horizon": i + 1 });
    c.append(el("title", {}, `+${i + 1} h: ${fmt(f[1])} °C`));
    svg.append(c);
  }
  svg.dataset.forecastPoints = String(fpts.length);
  svg.dataset.observedPoints = String(pts.length);

  const shown = levels.slice().reverse();
  const range = (f, level) => {
    const i = (f.intervals || []).find((x) => x.level === level);
    return i ? `${fmt(i.lower)} to ${fmt(i.upper)} °C` : "–";
  };
  const rows = fc.forecasts.map((f) => `<tr><td>+${f.horizon_hours} h</td><td>${f.time} UTC</td><td>${fmt(f.temperature_2m)} °C</td>${shown.map((l) => `<td>${range(f, l)}</td>`).join("")}</tr>`);
  const heads = shown.map((l) => `<th>${pct(l)}% interval</th>`).join("");
  $("forecast-table").innerHTML = `<tr><th>horizon</th><th>time</th><th>forecast</th>${heads}</tr>${rows.join("")}`;
  $("issued").textContent = `from observations up to ${fc.issued_at} UTC (${fmt(fc.observations_age_minutes / 60, 1)} h old)`;
}

function drawModel(m) {
  const dl = $("model");
  const rows = [
    ["model", `${m.name} version ${m.version}`],
    ["alias", m.alias ? `@${m.alias}` : "– (local file)"],
    ["algorithm", m.algorithm],
    ["trained", new Date(m.trained_at).toISOString().replace("T", " ").slice(0, 16) + " UTC"],
    ["training data", `${m.training_window.start.slice(0, 16)} → ${m.training_window.end.slice(0, 16)} UTC`],
    ["data version", m.data_version],
    ["git commit", m.git_commit ? m.git_commit.slice(0, 12) : "unknown"],
  ];
  dl.innerHTML = rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
  const mm = m.metrics;
  const horizons = m.horizons || [1, 2, 3, 4, 5, 6];
  const body = horizons.map((h) => {
    const skill = mm[`skill_h${h}`];
    const cls = skill > 0 ? "ok" : "bad";
    return `<tr><td>${h} h</td><td>${fmt(mm[`rmse_h${h}`], 3)}</td><td>${fmt(mm[`persistence_rmse_h${h}`], 3)}</td><td class="${cls}">${skill === undefined ? "–" : (skill * 100).toFixed(1) + "%"}</td></tr>`;
  });
  $("metrics").innerHTML = `<tr><th>horizon</th><th>RMSE °C</th><th>persistence</th><th>skill</th></tr>${body.join("")}`;
}

function drawDrift(d, fc) {
  // The service's own verdict (GET /drift): calendar features and a window too small to
  // tell are its business, not the page's.
  const share = d.out_of_range_share;
  const young = d.requests < d.thresholds.min_requests;
  const level = d.drifting ? "bad" : !young && share > d.thresholds.max_out_of_range_share / 4 ? "warn" : "ok";
  const words = { ok: young ? "too few requests to tell" : "no drift", warn: "some drift", bad: "drift" }[level];
  const current = fc && fc.features_out_of_range.length ? fc.features_out_of_range.join(", ") : "none";
  $("drift").innerHTML = [
    ["status", `<span class="${level}" id="drift-status">${words}</span>`],
    ["requests in window", `${d.requests} of ${d.window}`],
    ["out of training range", `${fmt(share * 100, 1)}% of requests`],
    ["largest PSI", d.max_psi === null ? `– (needs 20 requests)` : fmt(d.max_psi, 3)],
    ["now out of range", current],
  ].map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
  const top = d.features.slice(0, 5).map((f) => `<tr><td>${f.feature}</td><td>${fmt(f.psi, 3)}</td><td>${fmt(f.out_of_range_share * 100, 1)}%</td></tr>`);
  $("drift-features").innerHTML = `<tr><th>feature</th><th>PSI</th><th>out of range</th></tr>${top.join("")}`;
}

// The latest verification: the served version's forecasts 1 h and 6 h ahead against
// what was observed over the last 72 hours, and its live skill per horizon.
function drawLive(v, served) {
  const svg = $("live-chart");
  svg.replaceChildren();
  const W = 900, H = 300, L = 48, R = 16, T = 16, B = 36;
  const toMs = (t) => Date.parse(t + "Z");
  // A verification that scored nothing yet (a new deployment's first hours) has no pairs.
  const mine = (v.recent || []).filter((r) => r.version === served);
  const obs = (v.observed || []).map((o) => [toMs(o.time), o.temperature_2m]);
  const line = (h) => mine.filter((r) => r.horizon === h).map((r) => [toMs(r.target_time), r.forecast]);
  const h1 = line(1), h6 = line(6);
  const all = obs.concat(h1, h6);
  $("verified").textContent = v.as_of ? `observations up to ${v.as_of.slice(0, 16)} UTC, verified ${v.verified_at.slice(0, 16).replace("T", " ")} UTC` : "";
  const causes = v.retrain.causes || [];
  const retrain = v.retrain.needed ? "a retrain was asked for: " + causes.map((c) => c.reason).join("; ")
    : v.retrain.held ? "retrain held: " + v.retrain.held
    : causes.length ? causes.map((c) => c.reason).join("; ") : "no retrain needed";
  $("live-status").textContent = `version ${served}: ${mine.length} forecasts (all horizons) verified in the last 72 h; ${retrain}`;
  svg.dataset.verifiedPoints = String(h1.length + h6.length);
  if (all.length) {
    const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs);
    let y0 = Math.floor(Math.min(...ys) - 1), y1 = Math.ceil(Math.max(...ys) + 1);
    if (y1 - y0 < 4) { y0 -= 2; y1 += 2; }
    const sx = (x) => L + ((x - x0) / Math.max(1, x1 - x0)) * (W - L - R);
    const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
    const step = Math.max(1, Math.round((y1 - y0) / 6));
    for (let y = Math.ceil(y0); y <= y1; y += step) {
      svg.append(el("line", { class: "grid", x1: L, x2: W - R, y1: sy(y), y2: sy(y) }));
      svg.append(el("text", { class: "axis", x: L - 8, y: sy(y) + 4, "text-anchor": "end" }, `${y}°`));
    }
    for (let x = Math.ceil(x0 / 43200e3) * 43200e3; x <= x1; x += 12 * 3600e3) {
      const d = new Date(x);
      const label = `${String(d.getUTCDate()).padStart(2, "0")} ${String(d.getUTCHours()).padStart(2, "0")}:00`;
      svg.append(el("text", { class: "axis", x: sx(x), y: H - 12, "text-anchor": "middle" }, label));
    }
    const path = (p) => p.map((q, i) => `${i ? "L" : "M"}${sx(q[0]).toFixed(1)},${sy(q[1]).toFixed(1)}`).join("");
    svg.append(el("path", { class: "obs-line", d: path(obs) }));
    svg.append(el("path", { class: "h1-line", d: path(h1) }));
    svg.append(el("path", { class: "h6-line", d: path(h6) }));
    for (const p of h6) svg.append(el("circle", { class: "verified-point", cx: sx(p[0]), cy: sy(p[1]), r: 2 }));
  }
  const ver = (v.versions || []).find((x) => x.version === served);
  const win = (w) => ver && ver.windows.find((x) => x.window === w);
  const day = win("24h"), week = win("7d");
  const cell = (w, h, f) => { const s = w && w.horizons.find((x) => x.horizon === h); return s ? f(s) : "–"; };
  const skill = (s) => s.skill === null ? "–" : `<span class="${s.skill > 0 ? "ok" : "bad"}">${(s.skill * 100).toFixed(1)}%</span>`;
  const rows = [1, 2, 3, 4, 5, 6].map((h) => `<tr><td>${h} h</td><td>${cell(day, h, (s) => s.n)}</td><td>${cell(day, h, (s) => fmt(s.rmse, 2))}</td><td>${cell(day, h, (s) => fmt(s.persistence_rmse, 2))}</td><td>${cell(day, h, skill)}</td><td>${cell(week, h, (s) => s.n)}</td><td>${cell(week, h, (s) => fmt(s.rmse, 2))}</td><td>${cell(week, h, skill)}</td></tr>`);
  $("live-table").innerHTML = `<tr><th>horizon</th><th>n (24 h)</th><th>RMSE °C</th><th>persistence</th><th>skill</th><th>n (7 d)</th><th>RMSE °C</th><th>skill</th></tr>${rows.join("")}`;
}

// The location shown (`?location=` of the page): with several, the picker sets it.
let site = new URLSearchParams(window.location.search).get("location");
const at = (path) => (site ? `${path}?location=${encodeURIComponent(site)}` : path);

async function pickSite() {
  const list = await getJson("/locations").catch(() => null);
  if (!list || list.locations.length < 2) return;
  const select = $("site");
  if (!site || !list.locations.some((l) => l.id === site)) site = list.locations[0].id;
  if (!select.options.length) {
    for (const l of list.locations) select.add(new Option(`${l.name} (${l.id})`, l.id));
    select.addEventListener("change", () => {
      site = select.value;
      history.replaceState(null, "", `?location=${encodeURIComponent(site)}`);
      main().catch((e) => setStatus(e.message, true));
    });
    $("site-picker").hidden = false;
  }
  select.value = site;
}

async function main() {
  await pickSite();
  const [fc, model, drift] = await Promise.allSettled([getJson(at("/forecast")), getJson(at("/model")), getJson(at("/drift"))]);
  // /model says whether a verification has run; only then is there one to fetch.
  const verified = model.status === "fulfilled" && model.value.live;
  const [live] = verified ? await Promise.allSettled([getJson(at("/verification"))]) : [null];
  const problems = [];
  if (model.status === "fulfilled") drawModel(model.value); else problems.push(model.reason.message);
  if (fc.status === "fulfilled") drawChart(fc.value); else problems.push(fc.reason.message);
  if (drift.status === "fulfilled") drawDrift(drift.value, fc.status === "fulfilled" ? fc.value : null);
  // No verification yet is not an error of the page: it says so where the chart goes.
  if (live && live.status === "fulfilled") drawLive(live.value, model.value.version);
  else if (live) problems.push(live.reason.message);
  else $("live-status").textContent = "no verification has run yet: `rps verify` scores the logged forecasts once their hours are observed";
  if (problems.length) setStatus(problems.join(" · "), true);
  else setStatus(`Serving ${model.value.name} version ${model.value.version}${model.value.alias ? " (@" + model.value.alias + ")" : ""}`);
  document.body.dataset.ready = "true";
}

main().catch((e) => { setStatus(e.message, true); document.body.dataset.ready = "true"; });
setInterval(() => main().catch(() => {}), 60_000);
