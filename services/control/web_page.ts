/**
 * The control service's web page (`GET /`): hosts and VMs with state, quota and load,
 * refreshed every 2 s from the REST API, with a console button per running VM (its console
 * service's web terminal) and, given a Jaeger UI, a link to each VM's traces there (the CPU
 * service's spans carry `vmesh.vm`).
 * @module
 */

import { Hono } from "hono";

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vmesh control</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; }
.running, .up { color: #070; } .lost, .failed, .down { color: #b00; } .stopped, .exited { color: #666; }
</style></head><body>
<h1>vmesh control</h1>
<h2>Hosts</h2>
<table id="hosts"><thead><tr><th>host</th><th>state</th><th>cores</th><th>RAM MiB</th>
<th>reserved harts</th><th>reserved RAM MiB</th><th>CPU use</th><th>VMs</th><th>labels</th></tr></thead>
<tbody></tbody></table>
<h2>VMs</h2>
<table id="vms"><thead><tr><th>name</th><th>state</th><th>host</th><th>harts</th><th>RAM MiB</th>
<th>disk MiB</th><th>labels</th><th>console</th><th>reason</th><th>traces</th></tr></thead><tbody></tbody></table>
<p id="status"></p>
<script>
const JAEGER = __JAEGER__;
const STATES = ["unspecified", "starting", "running", "stopped", "exited", "lost", "failed"];
const cell = (text, cls) => { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; };
const labels = (l) => Object.entries(l || {}).map(([k, v]) => k + "=" + v).join(",");
async function refresh() {
  try {
    const [h, v] = await Promise.all([fetch("api/hosts").then((r) => r.json()), fetch("api/vms").then((r) => r.json())]);
    const hb = document.querySelector("#hosts tbody"); hb.replaceChildren();
    for (const x of h.hosts) {
      const tr = document.createElement("tr"); tr.dataset.host = x.host;
      tr.append(cell(x.host), cell(x.up ? "up" : "down", x.up ? "up" : "down"), cell(x.cores), cell(x.ramMib),
        cell(x.reserved.harts), cell(x.reserved.ramMib), cell(Math.round(x.cpuUse * 100) + "%"), cell(x.vms), cell(labels(x.labels)));
      hb.append(tr);
    }
    const vb = document.querySelector("#vms tbody"); vb.replaceChildren();
    for (const x of v.vms) {
      const st = STATES[x.state] || String(x.state);
      const tr = document.createElement("tr"); tr.dataset.vm = x.name;
      const con = document.createElement("td");
      if (st === "running" && x.consoleUrl) {
        const a = document.createElement("a"); a.href = x.consoleUrl; a.target = "_blank"; a.textContent = "console"; con.append(a);
      }
      const tr_ = document.createElement("td");
      if (JAEGER) {
        const a = document.createElement("a");
        a.href = JAEGER + "/search?service=vmesh-cpu&tags=" + encodeURIComponent(JSON.stringify({ "vmesh.vm": x.name }));
        a.target = "_blank"; a.textContent = "traces"; tr_.append(a);
      }
      tr.append(cell(x.name), cell(st, st), cell(x.host), cell(x.quota.harts), cell(x.quota.ramMib), cell(x.quota.diskMib),
        cell(labels(x.labels)), con, cell(x.reason), tr_);
      vb.append(tr);
    }
    document.querySelector("#status").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    document.querySelector("#status").textContent = "cannot reach the control service: " + e;
  }
}
refresh(); setInterval(refresh, 2000);
</script></body></html>`;

/** Options of {@link controlWebPage}. */
export interface WebPageOptions {
  /** Jaeger UI base URL (e.g. http://127.0.0.1:16686); absent: no trace links. */
  jaegerUi?: string;
}

/**
 * The sub-app serving the page at `/`.
 *
 * @example
 * ```ts
 * controlApp({ service: "vmesh-control", routes: [{ path: "/", app: controlWebPage() }] });
 * ```
 */
export function controlWebPage(opts: WebPageOptions = {}): Hono {
  const jaeger = opts.jaegerUi?.replace(/\/+$/, "");
  // JSON, with "<" escaped, is a safe script literal.
  const html = PAGE.replace("__JAEGER__", JSON.stringify(jaeger ?? "").replace(/</g, "\\u003c"));
  const app = new Hono();
  app.get("/", (c) => c.html(html));
  return app;
}
