import assert from "node:assert/strict";

const MAIN = new URL("./main.ts", import.meta.url).pathname;

/** Runs the CPU service with `args` (it must fail before it connects to a bus). */
async function cpu(args: string[]): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("cpu --new-mac: only with --restore, only a unicast MAC, one line and exit 2", async () => {
  const alone = await cpu(["--vm", "a", "--new-mac", "52:54:00:00:00:01"]);
  assert.equal(alone.code, 2);
  assert.equal(
    alone.stderr,
    "vmesh-cpu: --new-mac changes a restored NIC's MAC: it needs --restore SNAP (else use --nic mac=)\n",
  );
  const group = await cpu(["--vm", "a", "--restore", "s", "--new-mac", "01:00:5e:00:00:01"]);
  assert.equal(group.code, 2);
  assert.match(group.stderr, /--new-mac 01:00:5e:00:00:01 is a group \(multicast\) address/);
  const bad = await cpu(["--vm", "a", "--restore", "s", "--new-mac", "52:54:00"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--new-mac "52:54:00" is not a MAC address/);
});
