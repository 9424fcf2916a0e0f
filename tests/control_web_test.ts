// The control service's web page in a real headless Chromium: hosts and VMs with state and
// quota from a real control service, agent and guest; its console button opens the VM's
// web terminal, which shows the guest's output.
import assert from "node:assert/strict";
import { control } from "@vmesh/bus";
import { buildBareMetalElf } from "./bare_metal_elf.ts";
import { type ServiceProcess, startService, startTestBus } from "./services_harness.ts";

/** The part of playwright-core's API this test uses. */
interface Page {
  goto(url: string): Promise<unknown>;
  on(event: "pageerror", fn: (e: Error) => void): void;
  waitForSelector(selector: string, opts?: { timeout?: number }): Promise<unknown>;
  textContent(selector: string): Promise<string | null>;
  getAttribute(selector: string, name: string): Promise<string | null>;
  waitForFunction<A>(
    fn: (arg: A) => boolean,
    arg: A,
    opts?: { timeout?: number },
  ): Promise<unknown>;
}
interface BrowserContext {
  newPage(): Promise<Page>;
  close(): Promise<void>;
}
interface Chromium {
  launchPersistentContext(
    dir: string,
    opts: { executablePath: string; headless: boolean; args: string[] },
  ): Promise<BrowserContext>;
}

// A computed specifier, as in web_terminal_test.ts: playwright's typings pull in @types/node.
async function loadChromium(): Promise<Chromium> {
  const name = ["playwright", "core"].join("-");
  return ((await import(name)) as { chromium: Chromium }).chromium;
}
const CHROMIUM = "/usr/bin/chromium";

const GUEST = `
  .section .text
  .globl _start
_start:
  la t1, msg
  li t0, 0x10000000
1: lbu t2, 0(t1)
  beqz t2, 2f
  sb t2, 0(t0)
  addi t1, t1, 1
  j 1b
2: wfi
  j 2b
  .section .rodata
msg: .asciz "vmesh idle guest up\\n"
`;

Deno.test({
  name: "control web page: hosts and VMs in headless Chromium, console button to the guest",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  assert.ok(
    await Deno.stat(CHROMIUM).then(() => true, () => false),
    `${CHROMIUM} missing: apt-get install -y chromium (./vmesh installs it)`,
  );
  const dir = await Deno.makeTempDir({ prefix: "vmesh-control-web-" });
  const tb = await startTestBus();
  const procs: ServiceProcess[] = [];
  let browser: BrowserContext | undefined;
  try {
    const kernel = await buildBareMetalElf(dir, "idle", GUEST);
    procs.push(
      await startService(
        "agent",
        ["--host", "h1", "--ram", "2048", "--dir", `${dir}/h1`],
        tb.nats.url,
      ),
    );
    const ctlProc = await startService("control", ["--http", "0"], tb.nats.url);
    procs.push(ctlProc);
    const base = / http (http:\/\/\S+)/.exec(ctlProc.ready)![1];
    const ctl = tb.bus.client({ prefix: control.CONTROL_PREFIX }, control.ops, {
      timeoutMs: 120_000,
      retries: 0,
    });
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
    browser = await (await loadChromium()).launchPersistentContext(`${dir}/chromium`, {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
    });
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
    const href = await page.getAttribute('tr[data-vm="w1"] a', "href");
    assert.equal(href, vm.consoleUrl);
    // The console button's target: the VM's web terminal, with the guest's line in it.
    const term = await browser.newPage();
    await term.goto(href!);
    await term.waitForFunction(
      (t) => {
        // deno-lint-ignore no-explicit-any
        const b = (globalThis as any).vmeshTerm?.buffer.active;
        if (!b) return false;
        for (let i = 0; i < b.length; i++) {
          if (b.getLine(i).translateToString(true).includes(t)) return true;
        }
        return false;
      },
      "vmesh idle guest up",
      { timeout: 30_000 },
    );
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
