/**
 * Headless Chromium for the web page tests, through playwright-core with Debian's
 * `/usr/bin/chromium` (no browser download).
 * @module
 */

/** The part of playwright-core's Page API the tests use. */
export interface Page {
  goto(url: string): Promise<unknown>;
  on(event: "pageerror", fn: (e: Error) => void): void;
  evaluate<R>(fn: () => R): Promise<R>;
  waitForFunction<A>(
    fn: (arg: A) => boolean,
    arg: A,
    opts?: { timeout?: number },
  ): Promise<unknown>;
  waitForSelector(selector: string, opts?: { timeout?: number }): Promise<unknown>;
  textContent(selector: string): Promise<string | null>;
  getAttribute(selector: string, name: string): Promise<string | null>;
  click(selector: string): Promise<void>;
  keyboard: { type(text: string): Promise<void>; press(key: string): Promise<void> };
}

/** A browser with its own profile. */
export interface BrowserContext {
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

interface Chromium {
  launchPersistentContext(
    dir: string,
    opts: { executablePath: string; headless: boolean; args: string[] },
  ): Promise<BrowserContext>;
}

/** Debian's Chromium. */
export const CHROMIUM = "/usr/bin/chromium";

const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Why Chromium cannot run here, or undefined when it can. */
export async function chromiumMissing(): Promise<string | undefined> {
  const there = await Deno.stat(CHROMIUM).then(() => true, () => false);
  return there
    ? undefined
    : `${CHROMIUM} missing: apt-get install -y chromium (./vmesh installs it)`;
}

/**
 * Starts headless Chromium with its profile in `userDataDir`.
 *
 * @example
 * ```ts
 * const browser = await launchChromium(dir);
 * const page = await browser.newPage();
 * ```
 */
export async function launchChromium(userDataDir: string): Promise<BrowserContext> {
  // A computed specifier: playwright's typings pull in @types/node globals, which would
  // change how other files type-check under `deno check .`.
  const name = ["playwright", "core"].join("-");
  const { chromium } = (await import(name)) as { chromium: Chromium };
  return await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
  });
}

/**
 * Waits until the console's web terminal in `page` (xterm.js, `globalThis.vmeshTerm`) has a
 * line containing `text`.
 *
 * @example
 * ```ts
 * const page = await (await launchChromium(dir)).newPage();
 * await page.goto(consoleUrl);
 * await terminalShows(page, "login:", 30_000);
 * ```
 */
export function terminalShows(page: Page, text: string, timeoutMs: number): Promise<unknown> {
  return page.waitForFunction(
    (t) => {
      // deno-lint-ignore no-explicit-any
      const b = (globalThis as any).vmeshTerm?.buffer.active;
      if (!b) return false;
      for (let i = 0; i < b.length; i++) {
        if (b.getLine(i).translateToString(true).includes(t)) return true;
      }
      return false;
    },
    text,
    { timeout: timeoutMs },
  );
}
