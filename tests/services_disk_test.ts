/**
 * The disk service as a real process on a real nats-server: Block API round trips,
 * typed refusals, COW isolation, discovery, and a kill/restart under a retrying client.
 */
import assert from "node:assert/strict";
import { block, BusError, Status } from "@vmesh/bus";
import {
  discover,
  MALFORMED,
  rawErrorRequest,
  servicePath,
  type ServiceProcess,
  startService,
  startTestBus,
} from "./services_harness.ts";

const MiB = 1 << 20;

function pattern(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed * 13 + (i >> 8)) & 0xff);
}

async function sha256(path: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", await Deno.readFile(path)));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function rejectsWith(p: Promise<unknown>, status: keyof typeof Status): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof BusError, `expected a BusError, got ${e}`);
    assert.equal(e.status, status, e.message);
    return true;
  });
}

Deno.test("disk service: Block API over NATS", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-disk-test-" });
  const tb = await startTestBus();
  const procs: ServiceProcess[] = [];
  const killed = new Set<ServiceProcess>();
  const url = tb.nats.url;
  try {
    await Deno.writeFile(`${dir}/disk.img`, new Uint8Array(MiB));
    await Deno.writeFile(`${dir}/ro.img`, pattern(64 * 1024, 1));
    await Deno.writeFile(`${dir}/base.img`, pattern(MiB, 2));
    const baseHash = await sha256(`${dir}/base.img`);
    const start = async (args: string[]) => {
      const p = await startService("disk", args, url);
      procs.push(p);
      return p;
    };
    const rw = await start(["--vm", "vm1", "--device", "disk0", "--image", `${dir}/disk.img`]);
    await start(["--vm", "vm1", "--device", "ro0", "--image", `${dir}/ro.img`, "--read-only"]);
    const overlayA = [
      "--vm",
      "vmA",
      "--device",
      "disk0",
      "--image",
      `${dir}/base.img`,
      "--overlay",
      `${dir}/a.cow`,
      "--cluster-size",
      "4096",
    ];
    const cowA = await start(overlayA);
    await start([
      "--vm",
      "vmB",
      "--device",
      "disk0",
      "--image",
      `${dir}/base.img`,
      "--overlay",
      `${dir}/b.cow`,
    ]);
    await start([
      "--vm",
      "vm1",
      "--device",
      "small0",
      "--image",
      `${dir}/disk.img`,
      "--max-transfer",
      "65536",
    ]);

    const disk = tb.bus.client({ vm: "vm1", device: "disk0" }, block.ops, { timeoutMs: 10_000 });
    const ro = tb.bus.client({ vm: "vm1", device: "ro0" }, block.ops);
    const small = tb.bus.client({ vm: "vm1", device: "small0" }, block.ops);
    const a = tb.bus.client({ vm: "vmA", device: "disk0" }, block.ops);
    const b = tb.bus.client({ vm: "vmB", device: "disk0" }, block.ops);

    await t.step(
      "discovery: $SRV.INFO lists every instance with version and endpoints",
      async () => {
        const infos = await discover(tb.bus, "vmesh-disk", 5);
        assert.equal(infos.length, 5);
        const prefixes = infos.map((i) => i.metadata?.prefix).sort();
        assert.deepEqual(prefixes, [
          "vmesh.vm1.disk0",
          "vmesh.vm1.ro0",
          "vmesh.vm1.small0",
          "vmesh.vmA.disk0",
          "vmesh.vmB.disk0",
        ]);
        const one = infos.find((i) => i.metadata?.prefix === "vmesh.vm1.disk0")!;
        assert.equal(one.version, "0.1.0");
        assert.deepEqual(
          one.endpoints.map((e) => e.subject).sort(),
          ["checkpoint", "discard", "flush", "info", "read", "write"].map((op) =>
            `vmesh.vm1.disk0.${op}`
          ),
        );
      },
    );

    await t.step("info, write/read round trip, flush reaches the image file", async () => {
      assert.deepEqual(await disk.call("info", {}), {
        sizeBytes: MiB,
        sectorSize: 512,
        readOnly: false,
        discard: true,
      });
      const data = pattern(8192, 3);
      const w = await disk.call("write", { offset: 4096, data });
      assert.equal(w.written, 8192);
      const r = await disk.call("read", { offset: 4096, length: 8192 });
      assert.deepEqual(r.data, data);
      await disk.call("flush", {});
      assert.deepEqual((await Deno.readFile(`${dir}/disk.img`)).subarray(4096, 4096 + 8192), data);
    });

    await t.step("discard zeroes the range", async () => {
      await disk.call("discard", { offset: 4096, length: 4096 });
      const r = await disk.call("read", { offset: 4096, length: 8192 });
      assert.deepEqual(r.data.subarray(0, 4096), new Uint8Array(4096));
      assert.deepEqual(r.data.subarray(4096), pattern(8192, 3).subarray(4096));
    });

    await t.step("refusals are typed errors and the service keeps serving", async () => {
      await rejectsWith(ro.call("write", { offset: 0, data: new Uint8Array(512) }), "READ_ONLY");
      await rejectsWith(ro.call("discard", { offset: 0, length: 512 }), "READ_ONLY");
      assert.deepEqual(
        (await ro.call("read", { offset: 512, length: 512 })).data,
        pattern(65536, 1).subarray(512, 1024),
      );
      await rejectsWith(disk.call("read", { offset: MiB - 512, length: 1024 }), "OUT_OF_RANGE");
      await rejectsWith(
        disk.call("write", { offset: MiB, data: new Uint8Array(512) }),
        "OUT_OF_RANGE",
      );
      await rejectsWith(disk.call("read", { offset: 100, length: 512 }), "INVALID_ARGUMENT");
      // Oversized: a payload over the service's limit, and a read longer than max transfer.
      await rejectsWith(
        small.call("write", { offset: 0, data: new Uint8Array(128 * 1024) }),
        "TOO_LARGE",
      );
      await rejectsWith(small.call("read", { offset: 0, length: 128 * 1024 }), "TOO_LARGE");
      const mal = await rawErrorRequest(tb.bus, "vmesh.vm1.disk0.read", MALFORMED);
      assert.equal(mal.header, "MALFORMED");
      assert.equal(mal.code, Status.MALFORMED);
      const unk = await rawErrorRequest(tb.bus, "vmesh.vm1.disk0.frobnicate", new Uint8Array());
      assert.equal(unk.header, "UNKNOWN_OP");
      const big = await rawErrorRequest(tb.bus, "vmesh.vm1.small0.write", new Uint8Array(100_000));
      assert.equal(big.header, "TOO_LARGE");
      // Still serving after all of that.
      assert.equal((await small.call("read", { offset: 0, length: 512 })).data.length, 512);
      assert.equal((await disk.call("info", {})).sizeBytes, MiB);
    });

    await t.step("COW overlays on one base are isolated; the base is unchanged", async () => {
      const da = pattern(6000, 9).subarray(0, 5120);
      await a.call("write", { offset: 10 * 4096 + 512, data: da });
      await a.call("flush", {});
      const ra = await a.call("read", { offset: 10 * 4096, length: 3 * 4096 });
      const expected = pattern(MiB, 2).slice(10 * 4096, 13 * 4096);
      expected.set(da, 512);
      assert.deepEqual(ra.data, expected);
      const rb = await b.call("read", { offset: 10 * 4096, length: 3 * 4096 });
      assert.deepEqual(rb.data, pattern(MiB, 2).subarray(10 * 4096, 13 * 4096));
      await b.call("write", { offset: 0, data: new Uint8Array(4096).fill(0xee) });
      assert.deepEqual(
        (await a.call("read", { offset: 0, length: 4096 })).data,
        pattern(MiB, 2).subarray(0, 4096),
      );
      assert.equal(await sha256(`${dir}/base.img`), baseHash);
      // The overlay survives a restart of its service.
      assert.equal(await cowA.stop("SIGTERM"), 0, cowA.log.join("\n"));
      procs.splice(procs.indexOf(cowA), 1);
      await start(overlayA);
      assert.deepEqual(
        (await a.call("read", { offset: 10 * 4096, length: 3 * 4096 })).data,
        expected,
      );
    });

    await t.step("kill -9 mid-sequence and restart: the retried write completes once", async () => {
      const chunks = Array.from({ length: 8 }, (_, i) => pattern(4096, 20 + i));
      const retrying = { timeoutMs: 1000, retries: 30, retryDelayMs: 50 };
      for (let i = 0; i < 4; i++) {
        await disk.call("write", { offset: 65536 + i * 4096, data: chunks[i] }, retrying);
      }
      // The service dies; the next write is sent while nothing serves the disk, and its
      // retries (same request id) reach the restarted service.
      killed.add(rw);
      await rw.stop("SIGKILL");
      const pending = disk.call(
        "write",
        { offset: 65536 + 4 * 4096, data: chunks[4], requestId: "write-4" },
        retrying,
      );
      procs.push(
        await startService(
          "disk",
          ["--vm", "vm1", "--device", "disk0", "--image", `${dir}/disk.img`],
          url,
        ),
      );
      assert.equal((await pending).written, 4096);
      for (let i = 5; i < 8; i++) {
        await disk.call("write", { offset: 65536 + i * 4096, data: chunks[i] }, retrying);
      }
      const all = await disk.call("read", { offset: 65536, length: 8 * 4096 }, retrying);
      for (let i = 0; i < 8; i++) {
        assert.deepEqual(all.data.subarray(i * 4096, (i + 1) * 4096), chunks[i], `chunk ${i}`);
      }
    });

    await t.step(
      "a request held by a frozen service that is killed completes on its replacement",
      async () => {
        const current = procs[procs.length - 1];
        const data = pattern(4096, 61);
        current.child.kill("SIGSTOP");
        const pending = disk.call(
          "write",
          { offset: 131072, data, requestId: "write-frozen" },
          { timeoutMs: 1000, retries: 30, retryDelayMs: 50 },
        );
        // Once the server has the request it is delivered to the frozen process's socket.
        await tb.bus.flush();
        killed.add(current);
        await current.stop("SIGKILL");
        procs.push(
          await startService("disk", [
            "--vm",
            "vm1",
            "--device",
            "disk0",
            "--image",
            `${dir}/disk.img`,
          ], url),
        );
        assert.equal((await pending).written, 4096);
        assert.deepEqual((await disk.call("read", { offset: 131072, length: 4096 })).data, data);
      },
    );

    await t.step(
      "a retried request id is answered from the replay cache, not re-applied",
      async () => {
        const first = pattern(512, 40);
        await disk.call("write", { offset: 0, data: first, requestId: "dup-1" });
        await disk.call("write", { offset: 0, data: pattern(512, 41), requestId: "other" });
        // Same id again (a late retry): the write must not be applied a second time.
        await disk.call("write", { offset: 0, data: first, requestId: "dup-1" });
        assert.deepEqual(
          (await disk.call("read", { offset: 0, length: 512 })).data,
          pattern(512, 41),
        );
      },
    );

    await t.step("a broken overlay file: one clear error line, exit 1", async () => {
      await Deno.writeFile(`${dir}/junk.cow`, new Uint8Array(8192).fill(0x5a));
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--quiet",
          servicePath("disk"),
          "--image",
          `${dir}/base.img`,
          "--overlay",
          `${dir}/junk.cow`,
        ],
        env: { NATS_URL: url, NO_COLOR: "1" },
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).output();
      const lines = new TextDecoder().decode(out.stderr).trim().split("\n");
      assert.equal(out.code, 1);
      assert.equal(lines.length, 1, lines.join("\n"));
      assert.match(lines[0], /vmesh-disk: cannot open .*junk\.cow: not a vmesh COW overlay/);
    });

    await t.step("SIGTERM drains and exits 0", async () => {
      // The killed instances are gone already; every live one must drain and exit 0.
      for (const p of procs.splice(0).filter((p) => !killed.has(p))) {
        const code = await p.stop("SIGTERM");
        assert.equal(code, 0, p.log.join("\n"));
      }
    });
  } finally {
    for (const p of procs) await p.stop("SIGKILL");
    await tb.close();
    await Deno.remove(dir, { recursive: true });
  }
});
