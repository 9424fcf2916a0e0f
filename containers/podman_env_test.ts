import assert from "node:assert/strict";
import { CONTAINERS_CONF_TEXT, podmanEnv } from "./podman_env.ts";

Deno.test("podmanEnv: writes containers.conf (runc, explicit ulimits) and points CONTAINERS_CONF at it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const env = await podmanEnv(`${dir}/conf`);
    assert.equal(env.CONTAINERS_CONF, `${dir}/conf/containers.conf`);
    assert.equal(env.PATH, Deno.env.get("PATH"));
    const text = await Deno.readTextFile(env.CONTAINERS_CONF);
    assert.equal(text, CONTAINERS_CONF_TEXT);
    assert.match(text, /^runtime = "runc"$/m);
    assert.match(text, /^default_ulimits = \["nofile=1024:1024", "nproc=4096:4096"\]$/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
