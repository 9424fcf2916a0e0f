// The control service's web page in a real headless Chromium: hosts and VMs with state and
// quota from a real control service, agent and guest; its console button opens the VM's
// web terminal, which shows the guest's output.
import assert from "node:assert/strict";
import { buildIdleGuest, IDLE_GUEST_LINE } from "./bare_metal_elf.ts";
import { controlClient } from "./control_harness.ts";
import { type ServiceProcess, startService, startTestBus } from "./services_harness.ts";
import {
  type BrowserContext,
  chromiumMissing,
  launchChromium,
  terminalShows,
} from "./headless_chromium.ts";

Deno.test({
  name:
    "control web page: hosts and VMs in headless Chromium, console button to the guest, traces link",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const missing = await chromiumMissing();
  assert.ok(!missing, missing);
  const dir = await Deno.makeTempDir({ prefix: "vmesh-control-web-" });
  const tb = await startTestBus();
  const procs: ServiceProcess[] = [];
  let browser: BrowserContext | undefined;
  try {
    const kernel = await buildIdleGuest(dir);
    procs.push(
      await startService(
        "agent",
        ["--host", "h1", "--ram", "2048", "--dir", `${dir}/h1`],
        tb.nats.url,
      ),
    );
    const ctlProc = await startService("control", [
      "--http",
      "0",
      "--jaeger-ui",
      "http://127.0.0.1:16686/",
    ], tb.nats.url);
    procs.push(ctlProc);
    const base = / http (http:\/\/\S+)/.exec(ctlProc.ready)![1];
    const ctl = controlClient(tb.bus);
    for (let i = 0; (await ctl.call("hosts", {})).hosts.length === 0; i++) {
      assert.ok(i < 100, "the agent never announced itself");
      await new Promise((r) => setTimeout(r, 100));
    }
    const vm = await ctl.call("create", {
      name: "w1",
      quota: { harts: 1, ramMib: 96, diskMib: 0 },
      boot: { bios: "none", kernel },
      labels: { app: "demo" },
    });
    browser = await launchChromium(`${dir}/chromium`);
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${base}/`);
    await page.waitForSelector('tr[data-vm="w1"]', { timeout: 20_000 });
    const row = (sel: string) => page.textContent(`tr[data-vm="w1"] ${sel}`);
    assert.equal(await row("td:nth-child(2)"), "running");
    assert.equal(await row("td:nth-child(3)"), "h1");
    assert.equal(await row("td:nth-child(5)"), "96");
    assert.equal(await row("td:nth-child(7)"), "app=demo");
    assert.equal(await page.textContent('tr[data-host="h1"] td:nth-child(2)'), "up");
    assert.equal(await page.textContent('tr[data-host="h1"] td:nth-child(6)'), "96");
    const href = await page.getAttribute('tr[data-vm="w1"] td:nth-child(8) a', "href");
    // The traces link searches the CPU service's spans of this VM in the Jaeger UI.
    const traces = await page.getAttribute('tr[data-vm="w1"] td:nth-child(10) a', "href");
    assert.equal(
      traces,
      "http://127.0.0.1:16686/search?service=vmesh-cpu&tags=" +
        encodeURIComponent(JSON.stringify({ "vmesh.vm": "w1" })),
    );
    assert.equal(href, vm.consoleUrl);
    // The console button's target: the VM's web terminal, with the guest's line in it.
    const term = await browser.newPage();
    await term.goto(href!);
    await terminalShows(term, IDLE_GUEST_LINE, 30_000);
    // A stopped VM shows as stopped on the next refresh, without a console button.
    await ctl.call("stop", { name: "w1" });
    await page.waitForFunction(
      () =>
        // deno-lint-ignore no-explicit-any
        (globalThis as any).document.querySelector('tr[data-vm="w1"] td:nth-child(2)')
          ?.textContent === "stopped",
      null,
      { timeout: 10_000 },
    );
    assert.equal(await page.textContent('tr[data-vm="w1"] td:nth-child(8)'), "");
    assert.deepEqual(errors, []);
  } finally {
    await browser?.close();
    for (const p of procs.reverse()) await p.stop().catch(() => {});
    await tb.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
