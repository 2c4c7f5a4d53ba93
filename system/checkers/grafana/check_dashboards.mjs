// Type-checks every dashboard in grafana/dashboards/ against Grafana's own schema
// (npm @grafana/schema) with tsc: the dashboard as a Dashboard, and each panel's
// options and custom field config as its panel plugin's Options and FieldConfig.
// Enum-typed fields take their JSON string values, unknown fields are errors.
// Prints the PromQL of every panel and of every Grafana-managed alert rule
// (grafana/provisioning/alerting/) as JSON on stdout, for the live test to run.
//   node system/checkers/grafana/check_dashboards.mjs [dashboards dir, default grafana/dashboards]
// (its scratch files go to test-output/, inside the repository, so that tsc finds
// node_modules/ the usual way).
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse } from "yaml";

const root = resolve(import.meta.dirname, "../../..");
const scratch = join(root, "test-output/grafana-check", String(process.pid));
mkdirSync(scratch, { recursive: true });

// Panel type → the module with its Options (and FieldConfig, where it has custom ones).
const plugins = {
  timeseries: ["TimeSeriesPanelCfg", true],
  stat: ["StatPanelCfg", false],
  heatmap: ["HeatmapPanelCfg", true],
  table: ["TablePanelCfg", true],
  bargauge: ["BarGaugePanelCfg", false],
};
const dir = process.argv[2] ? resolve(process.argv[2]) : join(root, "grafana/dashboards");
const files = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
if (files.length === 0) {
  console.error(`no dashboards in ${dir}`);
  process.exit(1);
}

const lines = [
  `import type { Dashboard } from "@grafana/schema";`,
  // JSON cannot hold a TypeScript enum: accept each enum's string values instead.
  `type Json<T> = T extends string ? \`\${T}\` : T extends number | boolean | null | undefined ? T :`,
  `  T extends Array<infer U> ? Array<Json<U>> : T extends object ? { [K in keyof T]: Json<T[K]> } : T;`,
];
for (const [type, [mod, custom]] of Object.entries(plugins)) {
  const names = custom ? `Options as ${type}Options, FieldConfig as ${type}FieldConfig` : `Options as ${type}Options`;
  lines.push(`import type { ${names} } from "@grafana/schema/dist/esm/raw/composable/${type}/panelcfg/x/${mod}_types.gen";`);
}
const queries = [];
let problems = 0;
files.forEach((file, i) => {
  const d = JSON.parse(readFileSync(join(dir, file), "utf8"));
  lines.push(`export const dashboard${i}: Json<Dashboard> = ${JSON.stringify(d, null, 2)};`);
  const panels = (d.panels || []).flatMap((p) => (p.type === "row" ? p.panels || [] : [p]));
  const ids = new Set();
  for (const p of panels) {
    if (!(p.type in plugins)) {
      console.error(`${file}: panel "${p.title}" has type ${p.type}, which this check does not know`);
      problems++;
      continue;
    }
    if (ids.has(p.id)) {
      console.error(`${file}: two panels have id ${p.id}`);
      problems++;
    }
    ids.add(p.id);
    const name = `${p.type}_${i}_${p.id}`;
    lines.push(`export const options_${name}: Json<${p.type}Options> = ${JSON.stringify(p.options ?? {})};`);
    const custom = p.fieldConfig?.defaults?.custom;
    if (custom && !plugins[p.type][1]) {
      console.error(`${file}: panel "${p.title}" (${p.type}) has custom field config, which its plugin does not take`);
      problems++;
    }
    if (custom && plugins[p.type][1]) lines.push(`export const custom_${name}: Json<${p.type}FieldConfig> = ${JSON.stringify(custom)};`);
    if (!p.targets?.length) {
      console.error(`${file}: panel "${p.title}" has no query`);
      problems++;
    }
    for (const t of p.targets || []) queries.push({ dashboard: d.uid, panel: p.title, type: p.type, refId: t.refId, expr: t.expr, legend: t.legendFormat });
  }
  for (const a of d.annotations?.list || []) {
    if (a.target?.expr) queries.push({ dashboard: d.uid, panel: `annotation: ${a.name}`, type: "annotation", refId: a.target.refId, expr: a.target.expr });
  }
});
// Grafana-managed alert rules: the Prometheus query of each, and the threshold it is held to.
const rulesFile = join(root, "grafana/provisioning/alerting/rules.yaml");
for (const group of parse(readFileSync(rulesFile, "utf8")).groups) {
  for (const rule of group.rules) {
    const query = rule.data.find((d) => d.datasourceUid !== "__expr__");
    const condition = rule.data.find((d) => d.refId === rule.condition);
    const evaluator = condition?.model?.conditions?.[0]?.evaluator;
    const threshold = evaluator?.params?.[0];
    if (!query?.model?.expr || typeof threshold !== "number") {
      console.error(`${rulesFile}: rule ${rule.title} needs a PromQL query and a numeric threshold`);
      problems++;
      continue;
    }
    // op: the rule fires when the value is greater (gt) or less (lt) than the threshold.
    queries.push({ dashboard: "alert-rule", panel: rule.title, type: "alert-rule", refId: query.refId, expr: query.model.expr, threshold, op: evaluator.type });
  }
}
writeFileSync(join(scratch, "dashboards.ts"), lines.join("\n") + "\n");
writeFileSync(
  join(scratch, "tsconfig.json"),
  JSON.stringify({
    compilerOptions: {
      strict: true, noEmit: true, target: "es2022", module: "esnext", moduleResolution: "bundler",
      skipLibCheck: true, types: [],
    },
    files: ["dashboards.ts"],
  }),
);
try {
  execFileSync(join(root, "node_modules/.bin/tsc"), ["-p", scratch], { stdio: ["ignore", "pipe", "pipe"] });
} catch (e) {
  console.error(`the dashboards do not match Grafana's schema:\n${e.stdout}${e.stderr}`);
  process.exit(1);
}
rmSync(scratch, { recursive: true, force: true });
if (problems) process.exit(1);
console.log(JSON.stringify(queries));
