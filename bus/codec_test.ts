import assert from "node:assert/strict";
import {
  block,
  codecFor,
  common,
  DecodeError,
  EncodeError,
  loadContracts,
  memory,
  net,
  Status,
  vm,
} from "./mod.ts";

Deno.test("codec: every proto file loads and every op's types resolve", () => {
  const root = loadContracts();
  for (
    const name of [
      "vmesh.common.Error",
      "vmesh.common.Status",
      "vmesh.block.Write",
      "vmesh.console.ByteBatch",
      "vmesh.net.PortJoin",
      "vmesh.memory.SnapshotManifest",
      "vmesh.vm.VmStatus",
    ]
  ) {
    assert.ok(root.lookup(name), name);
  }
  for (const ops of [block.ops, net.ops, memory.ops, vm.ops]) {
    for (const op of Object.values(ops)) {
      assert.ok(root.lookupType(op.request.typeName));
      assert.ok(root.lookupType(op.reply.typeName));
    }
  }
});

Deno.test("codec: the Status enum of common.proto matches Status", () => {
  const e = loadContracts().lookupEnum("vmesh.common.Status");
  assert.deepEqual(e.values, { ...Status });
});

Deno.test("codec: round trips with camelCase fields and defaults filled in", () => {
  const c = block.ops.write.request;
  const data = new Uint8Array([1, 2, 3, 250]);
  const bytes = c.encode({ requestId: "r1", offset: 2 ** 40 + 512, data, fua: true });
  const back = c.decode(bytes);
  assert.equal(back.requestId, "r1");
  assert.equal(back.offset, 2 ** 40 + 512);
  assert.equal(back.fua, true);
  assert.equal(back.data.constructor, Uint8Array);
  assert.deepEqual([...back.data], [...data]);
  const empty = c.decode(new Uint8Array(0));
  assert.deepEqual({ ...empty, data: [...empty.data] }, {
    requestId: "",
    offset: 0,
    data: [],
    fua: false,
  });
});

Deno.test("codec: nested and repeated messages round trip", () => {
  const c = memory.ops.put_manifest.request;
  const manifest: memory.SnapshotManifest = {
    vm: "vm1",
    pages: ["aa", "bb"],
    cpuState: new Uint8Array([9]),
    devices: [{ device: "uart0", kind: "ns16550", state: new Uint8Array([1, 2]) }],
    pageSize: 4096,
    ramBase: 0x8000_0000,
  };
  const back = c.decode(c.encode({ name: "snap", manifest }));
  assert.equal(back.manifest.pages.length, 2);
  assert.equal(back.manifest.devices[0].kind, "ns16550");
  assert.equal(back.manifest.ramBase, 0x8000_0000);
});

Deno.test("codec: 64-bit fields of VmStatus keep all bits as bigint", () => {
  const c = vm.ops.status.reply;
  const s = {
    state: vm.State.RUNNING,
    pc: 0xffff_ffff_8000_0000n,
    instret: 2n ** 60n,
    devices: [],
  };
  const back = c.decode(c.encode(s));
  assert.equal(back.pc, 0xffff_ffff_8000_0000n);
  assert.equal(back.instret, 2n ** 60n);
  assert.equal(back.state, vm.State.RUNNING);
});

Deno.test("codec: a string field that is not UTF-8 is a DecodeError (proto3)", () => {
  // vmesh.block.Flush field 1 (request_id), length 2: 0xc3 0x28 is an invalid UTF-8 sequence.
  const c = block.ops.flush.request;
  assert.throws(() => c.decode(new Uint8Array([0x0a, 0x02, 0xc3, 0x28])), DecodeError);
  assert.equal(
    (c.decode(new Uint8Array([0x0a, 0x02, 0xc3, 0xa9])) as { requestId: string }).requestId,
    "é",
  );
});

Deno.test("codec: malformed bytes raise a typed DecodeError", () => {
  const c = block.ops.read.request;
  for (const bad of [[0x10, 0xff, 0xff], [0x0a, 0x05, 0x41], [0xff, 0xff, 0xff, 0xff, 0xff]]) {
    const e = (() => {
      try {
        c.decode(new Uint8Array(bad));
      } catch (e) {
        return e;
      }
    })();
    assert.ok(e instanceof DecodeError, `${bad}: ${e}`);
    assert.equal(e.code, Status.MALFORMED);
    assert.equal(e.typeName, "vmesh.block.Read");
  }
});

Deno.test("codec: a value of the wrong shape raises a typed EncodeError", () => {
  const c = codecFor<Record<string, unknown>>("vmesh.block.Read");
  assert.throws(() => c.encode({ offset: "far away", length: 1 }), (e: unknown) => {
    assert.ok(e instanceof EncodeError);
    assert.equal(e.code, Status.INVALID_ARGUMENT);
    return true;
  });
});

Deno.test("codec: common.Error round trips", () => {
  const e = { code: Status.UNKNOWN_OP, message: "no op x", requestId: "id" };
  assert.deepEqual(common.errorCodec.decode(common.errorCodec.encode(e)), e);
});
