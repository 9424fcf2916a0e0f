/**
 * `./vmesh boot` interactively, the way a user sees it (keyboard on the console service's
 * stdin, here a pipe): the kernel log, the busybox prompt, a typed command's output, and
 * `poweroff` in the guest ending the run with exit code 0.
 */
import assert from "node:assert/strict";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;

Deno.test("vmesh boot: shell prompt, a typed command, poweroff -> exit 0", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    // --timeout bounds a run whose guest never powers off (the test then fails on the code).
    args: ["run", "-A", "--quiet", MAIN, "boot", "--timeout", "120"],
    env: { NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  let waiter: { text: string; done: () => void } | undefined;
  const reading = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      out += chunk;
      if (waiter && out.includes(waiter.text)) waiter.done();
    }
    waiter?.done();
  })();
  const errText = new Response(child.stderr).text();
  const until = (text: string) =>
    new Promise<void>((done) => {
      if (out.includes(text)) return done();
      waiter = { text, done };
    });
  const keys = child.stdin.getWriter();
  const type = (s: string) => keys.write(new TextEncoder().encode(s));

  await until("~ # ");
  await type("echo typed-$((6*7))\n");
  await until("typed-42");
  await type("poweroff\n");
  const status = await child.status;
  await keys.close().catch(() => {});
  await reading;
  const stderr = await errText;
  assert.match(out, /Linux version/, "the kernel log is on the terminal");
  assert.match(out, /typed-42/);
  assert.equal(status.code, 0, `exit code after poweroff\n${stderr}\n${out.slice(-500)}`);
  assert.match(stderr, /guest powered off/);
});
