// Loads the rps web page in headless Chromium and reports what it shows, as JSON on
// stdout: the number of forecast and observed points in the chart, the status line,
// the model panel. Writes a screenshot. Usage: node page.mjs <url> <screenshot.png>
import { chromium } from "playwright-core";

const [url, screenshot] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error("usage: node page.mjs <url> <screenshot.png>");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  const requests = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("request", (r) => requests.push(r.url()));
  const response = await page.goto(url, { waitUntil: "load", timeout: 30000 });
  await page.waitForSelector("body[data-ready=true]", { timeout: 30000 });
  const result = await page.evaluate(() => ({
    title: document.title,
    status: document.getElementById("status").textContent,
    statusIsError: document.getElementById("status").classList.contains("error"),
    forecastPoints: document.querySelectorAll("#chart .forecast-point").length,
    observedPoints: Number(document.getElementById("chart").dataset.observedPoints || 0),
    intervalBands: Number(document.getElementById("chart").dataset.intervalBands || 0),
    forecastRows: document.querySelectorAll("#forecast-table tr").length - 1,
    model: document.getElementById("model").textContent,
    drift: document.getElementById("drift").textContent,
    liveStatus: document.getElementById("live-status").textContent,
    verifiedPoints: Number(document.getElementById("live-chart").dataset.verifiedPoints || 0),
    liveRows: document.querySelectorAll("#live-table tr").length - 1,
  }));
  await page.screenshot({ path: screenshot, fullPage: true });
  const origin = new URL(url).origin;
  result.httpStatus = response.status();
  result.errors = errors;
  result.foreignRequests = requests.filter((r) => !r.startsWith(origin));
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
