/**
 * TLS on the bus (bus/tls.ts): certificates made with openssl, a real nats-server requiring
 * TLS and logins, a real disk service connecting with its login and the CA from
 * `VMESH_NATS_CA`, a client reading through it; a client without the CA is refused.
 */
import assert from "node:assert/strict";
import {
  block,
  BusCredentials,
  type BusRole,
  CA_ENV,
  connect,
  makeBusTls,
  readLogin,
  startEmbeddedNats,
  writeAdminLogin,
} from "@vmesh/bus";
import { startService } from "./services_harness.ts";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("bus TLS: services and clients with the CA get through, a client without it does not", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-tls-test-" });
  try {
    const tls = await makeBusTls(dir);
    assert.equal((await Deno.stat(tls.key)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${dir}/ca.key`)).mode! & 0o777, 0o600);
    const creds = new BusCredentials();
    const disk = { kind: "disk", vm: "t1", device: "disk0" } as const;
    const cpu: BusRole = { kind: "cpu", vm: "t1", disks: ["disk0"], ports: [] };
    creds.add(disk);
    const cpuUser = creds.add(cpu);
    const nats = await startEmbeddedNats({ jetstream: false, credentials: creds, tls });
    const image = `${dir}/disk.img`;
    await Deno.writeFile(image, new Uint8Array(4096).fill(0x5a));
    const svc = await startService(
      "disk",
      ["--vm", "t1", "--device", "disk0", "--image", image],
      nats.url,
      { env: { ...creds.env(disk), [CA_ENV]: tls.ca } },
    );
    try {
      const bus = await connect({
        url: nats.url,
        auth: { user: cpuUser.user, pass: cpuUser.password },
        tlsCa: tls.ca,
        log: () => {},
      });
      try {
        const r = await bus.request({ vm: "t1", device: "disk0" }, block.ops.read, {
          offset: 0,
          length: 512,
        });
        assert.deepEqual(r.data, new Uint8Array(512).fill(0x5a));
      } finally {
        await bus.close();
      }
      // The admin login for tools names the CA too.
      const login = await readLogin(await writeAdminLogin(`${dir}/bus.env`, nats));
      assert.equal(login[CA_ENV], tls.ca);
      // Without the CA the client cannot verify the server (a process of its own: the refused
      // socket's late errors cannot be caught in the test).
      const probe = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--quiet",
          `${ROOT}tests/nats_login_probe.ts`,
          nats.url,
          cpuUser.user,
          cpuUser.password,
        ],
        stdout: "piped",
      }).output();
      assert.match(new TextDecoder().decode(probe.stdout), /^refused: .*(certificate|tls)/i);
    } finally {
      await svc.stop();
      await nats.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
