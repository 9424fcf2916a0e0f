import assert from "node:assert/strict";
import { parseCompose } from "../cli/up.ts";
import { composeLogins, passwordVar, writeComposeSecrets } from "./bus_auth.ts";

const root = new URL("../", import.meta.url).pathname;

Deno.test("bus_auth: .env gets the missing passwords only, 0600, other lines kept", async () => {
  const logins = composeLogins(parseCompose(await Deno.readTextFile(`${root}compose.yaml`)));
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/.env`;
    await Deno.writeTextFile(path, `COMPOSE_PROJECT_NAME=mine\n${passwordVar("cpu")}=pwkept`, {
      mode: 0o644,
    });
    const added = await writeComposeSecrets(path, logins);
    assert.deepEqual(
      added.sort(),
      logins.map((l) => l.passwordVar).filter((v) => v !== "VMESH_PW_CPU").sort(),
    );
    const text = await Deno.readTextFile(path);
    assert.match(text, /^COMPOSE_PROJECT_NAME=mine\nVMESH_PW_CPU=pwkept\n/);
    for (const v of added) assert.match(text, new RegExp(`^${v}=pw[0-9a-f]{32}$`, "m"));
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    // A second run changes nothing.
    assert.deepEqual(await writeComposeSecrets(path, logins), []);
    assert.equal(await Deno.readTextFile(path), text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
