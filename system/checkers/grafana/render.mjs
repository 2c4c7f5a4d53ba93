// Draws the dashboards in grafana/dashboards/ from a live Prometheus, the way Grafana
// lays them out (its 24-column grid), and saves them as one PNG with headless
// Chromium. Grafana itself cannot run here; this is the picture in the README.
//   node system/checkers/grafana/render.mjs <prometheus url> <out.png> <start> <end> [rate interval]
// start and end are Unix seconds. Prints {"panels", "series", "empty": [titles]} as JSON.
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const [prom, out, start, end, rateInterval = "1m"] = process.argv.slice(2);
if (!prom || !out || !start || !end) {
  console.error("usage: node render.mjs <prometheus url> <out.png> <start> <end> [rate interval]");
  process.exit(2);
}
const root = resolve(import.meta.dirname, "../../..");
const dir = join(root, "grafana/dashboards");
const step = Math.max(1, Math.round((end - start) / 240));
const vars = (e) =>
  e.replaceAll("$__rate_interval", rateInterval).replaceAll('"$job"', '"rps-api"').replaceAll('"$instance"', '".*"');

async function query(expr, range) {
  const params = new URLSearchParams(range ? { query: vars(expr), start, end, step } : { query: vars(expr), time: end });
  const r = await fetch(`${prom}/api/v1/${range ? "query_range" : "query"}?${params}`);
  const body = await r.json();
  if (body.status !== "success") throw new Error(`${expr}: ${body.error}`);
  return body.data.result;
}

const legend = (fmt, metric) => (fmt || "").replace(/\{\{\s*(\w+)\s*\}\}/g, (_, k) => metric[k] ?? "");
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
function fmt(v, unit) {
  if (v === null || Number.isNaN(v)) return "–";
  switch (unit) {
    case "s": return v < 1e-3 ? `${(v * 1e6).toFixed(0)} µs` : v < 1 ? `${(v * 1e3).toFixed(v < 0.01 ? 2 : 1)} ms` : `${v.toFixed(2)} s`;
    case "percentunit": return `${(v * 100).toFixed(v < 0.1 ? 2 : 1)}%`;
    case "reqps": return `${v.toFixed(v < 10 ? 2 : 0)}/s`;
    case "celsius": return `${v.toFixed(1)} °C`;
    case "dateTimeFromNow": {
      const mins = Math.round((end * 1000 - v) / 60000);
      return mins < 1 ? "just now" : `${mins} min ago`;
    }
    default: return Math.abs(v) >= 100 ? v.toFixed(0) : `${+v.toFixed(3)}`;
  }
}
const palette = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#fade2a", "#37872d", "#e0b400",
  "#1f60c4", "#c4162a", "#96d98d", "#ffb357", "#ca95e5", "#56a64b", "#ff7383", "#3274d9", "#8f3bb8", "#fa6400"];

function lineChart(series, unit, w, h) {
  const pad = { l: 58, r: 8, t: 6, b: 18 };
  const pts = series.flatMap((s) => s.values.map(([, v]) => v)).filter(Number.isFinite);
  let lo = Math.min(0, ...pts), hi = Math.max(...pts, 0);
  if (hi === lo) hi = lo + 1;
  const x = (t) => pad.l + ((t - start) / (end - start)) * (w - pad.l - pad.r);
  const y = (v) => h - pad.b - ((v - lo) / (hi - lo)) * (h - pad.t - pad.b);
  let svg = `<svg width="${w}" height="${h}">`;
  for (let i = 0; i <= 3; i++) {
    const v = lo + ((hi - lo) * i) / 3;
    svg += `<line x1="${pad.l}" x2="${w - pad.r}" y1="${y(v)}" y2="${y(v)}" stroke="#2c3235"/><text x="${pad.l - 4}" y="${y(v) + 4}" text-anchor="end">${esc(fmt(v, unit))}</text>`;
  }
  for (const f of [0, 0.5, 1]) {
    const t = +start + f * (end - start);
    const label = new Date(t * 1000).toISOString().slice(11, 19);
    svg += `<text x="${x(t)}" y="${h - 4}" text-anchor="${f === 0 ? "start" : f === 1 ? "end" : "middle"}">${label}</text>`;
  }
  series.forEach((s, i) => {
    const d = s.values.filter(([, v]) => Number.isFinite(v)).map(([t, v], j) => `${j ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join("");
    if (d) svg += `<path d="${d}" fill="none" stroke="${palette[i % palette.length]}" stroke-width="1.5"/>`;
  });
  return svg + "</svg>";
}

const report = { panels: 0, series: 0, empty: [] };
let html = `<html><head><style>
body{margin:0;background:#111217;color:#ccccdc;font:12px Inter,Helvetica,Arial,sans-serif}
h1{font-size:17px;font-weight:500;margin:14px 12px 4px} .grid{position:relative;margin:0 8px}
.panel{position:absolute;background:#181b1f;border:1px solid #2c3235;border-radius:2px;box-sizing:border-box;padding:4px 8px;overflow:hidden}
.title{font-weight:500;font-size:13px;margin-bottom:2px} .stat{font-size:30px;font-weight:500;margin-top:8px}
.legend{display:flex;flex-wrap:wrap;gap:2px 10px;font-size:11px} .legend i{display:inline-block;width:12px;height:3px;margin-right:4px;vertical-align:middle}
svg text{fill:#8e8e8e;font-size:10px}
</style></head><body>`;
const width = 1600, colW = (width - 16) / 24, rowH = 30;
for (const file of readdirSync(dir).filter((f) => f.endsWith(".json")).sort().reverse()) {
  const d = JSON.parse(readFileSync(join(dir, file), "utf8"));
  const bottom = Math.max(...d.panels.map((p) => p.gridPos.y + p.gridPos.h));
  html += `<h1>${esc(d.title)} <span style="font-size:12px;color:#8e8e8e">(${new Date(start * 1000).toISOString().slice(0, 16)}Z – ${new Date(end * 1000).toISOString().slice(11, 16)}Z, from the live Prometheus)</span></h1><div class="grid" style="height:${bottom * rowH}px">`;
  for (const p of d.panels) {
    report.panels++;
    const { x, y, w, h } = p.gridPos;
    const [pw, ph] = [w * colW - 6, h * rowH - 6];
    const unit = p.fieldConfig?.defaults?.unit;
    let body = "";
    if (p.type === "stat") {
      const res = await query(p.targets[0].expr, false);
      report.series += res.length;
      if (!res.length) report.empty.push(p.title);
      const v = res.length ? Number(res[0].value[1]) : null;
      const mapped = p.fieldConfig?.defaults?.mappings?.[0]?.options?.[String(v)];
      const steps = p.fieldConfig?.defaults?.thresholds?.steps || [];
      const color = mapped?.color ?? steps.filter((s) => s.value === null || v >= s.value).at(-1)?.color ?? "green";
      const css = { green: "#73bf69", orange: "#ff9830", red: "#f2495c" }[color] || color;
      const text = p.options?.textMode === "name" && res.length ? legend(p.targets[0].legendFormat, res[0].metric) : mapped?.text ?? fmt(v, unit);
      body = `<div class="stat" style="color:${css};font-size:${text.length > 14 ? 18 : 30}px">${esc(text)}</div>`;
    } else {
      const series = [];
      for (const t of p.targets) for (const s of await query(t.expr, true)) series.push({ name: legend(t.legendFormat, s.metric), values: s.values.map(([ts, v]) => [ts, Number(v)]) });
      report.series += series.length;
      if (!series.length) report.empty.push(p.title);
      // Room for the legend: its rows at about 7 px a character.
      const legendWidth = series.slice(0, 14).reduce((n, s) => n + s.name.length * 6.5 + 26, 0);
      const rows = Math.max(1, Math.ceil(legendWidth / (pw - 16)));
      body = lineChart(series, unit, pw - 16, ph - 30 - rows * 15) +
        `<div class="legend">${series.slice(0, 14).map((s, i) => `<span><i style="background:${palette[i % palette.length]}"></i>${esc(s.name)}</span>`).join("")}</div>`;
    }
    html += `<div class="panel" style="left:${x * colW}px;top:${y * rowH}px;width:${pw}px;height:${ph}px"><div class="title">${esc(p.title)}</div>${body}</div>`;
  }
  html += "</div>";
}
html += "</body></html>";

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width, height: 800 } });
  await page.setContent(html, { waitUntil: "load" });
  await page.screenshot({ path: out, fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
