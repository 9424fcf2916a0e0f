/**
 * The control service's state in JetStream, so a restarted control service loses nothing
 * and two of them agree: VM records and host ledgers in the KV bucket `vmesh-control`
 * (records.ts), every change written with compare-and-set on the key's revision; events in
 * the stream `VMESH_CONTROL_EVENTS` (subjects `vmesh.control.events.<vm>`). A watch of the
 * bucket keeps a local copy of the records for `list`.
 * @module
 */

import { type KV, Kvm } from "@nats-io/kv";
import {
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@vmesh/bus";
import { type HostLedger, ledgerKey, vmKey, type VmRecord } from "./records.ts";

/** The KV bucket (one control plane per bus: its ops' subjects are shared too). */
export const DEFAULT_BUCKET = "vmesh-control";
/** The events stream. */
export const DEFAULT_STREAM = "VMESH_CONTROL_EVENTS";
/** Subject prefix of events: `vmesh.control.events.<vm>`. */
export const EVENTS_PREFIX = "vmesh.control.events";

/** One entry of the events stream. */
export interface ControlEvent {
  at: number;
  vm: string;
  /**
   * created, placed, running, refused, failed, stopped, exited, lost, removed, orphan-stopped,
   * recreating, recreated, migrating, migrated, migrate-failed, host-lost, host-up.
   */
  type: string;
  host?: string;
  detail?: string;
}

/** A value and the KV revision it was read at. */
export interface Versioned<T> {
  value: T;
  revision: number;
}

/** A compare-and-set lost to a concurrent writer (retry with a fresh read). */
export class CasConflict extends Error {}

const enc = new TextEncoder();

/** True when a KV write failed because the key's revision moved (or it exists). */
function isConflict(e: unknown): boolean {
  const m = `${(e as Error)?.message ?? e}`;
  return /wrong last sequence|key exists|10071/i.test(m);
}

/**
 * The control service's JetStream state.
 *
 * @example
 * ```ts
 * const store = await ControlStore.open(bus.nc);
 * const rev = await store.createVm(record);
 * ```
 */
export class ControlStore {
  readonly #vms = new Map<string, Versioned<VmRecord | undefined>>();
  readonly #ledgerChains = new Map<string, Promise<void>>();
  #watching?: AsyncIterable<unknown> & { stop(): void };

  private constructor(
    readonly kv: KV,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    readonly stream: string,
  ) {}

  /** Opens (creating them if needed) the bucket and the stream, and loads the records. */
  static async open(nc: NatsConnection): Promise<ControlStore> {
    const kv = await new Kvm(nc).create(DEFAULT_BUCKET, { history: 5 });
    const jsm = await jetstreamManager(nc);
    const stream = DEFAULT_STREAM;
    try {
      await jsm.streams.info(stream);
    } catch {
      await jsm.streams.add({ name: stream, subjects: [`${EVENTS_PREFIX}.>`], max_msgs: 100_000 });
    }
    const store = new ControlStore(kv, jetstream(nc), jsm, stream);
    await store.#load();
    return store;
  }

  async #load(): Promise<void> {
    // The watch delivers every key's last value, then changes; revisions order both.
    const w = await this.kv.watch({ key: "vm.>" });
    this.#watching = w as unknown as AsyncIterable<unknown> & { stop(): void };
    (async () => {
      for await (const e of w) {
        const name = e.key.slice(3);
        this.#apply(name, {
          value: e.operation === "PUT" ? e.json<VmRecord>() : undefined,
          revision: e.revision,
        });
      }
    })().catch(() => {});
    for await (const key of await this.kv.keys("vm.>")) {
      const e = await this.kv.get(key);
      if (e) {
        this.#apply(key.slice(3), {
          value: e.operation === "PUT" ? e.json<VmRecord>() : undefined,
          revision: e.revision,
        });
      }
    }
  }

  #apply(name: string, v: Versioned<VmRecord | undefined>): void {
    const old = this.#vms.get(name);
    if (!old || old.revision < v.revision) this.#vms.set(name, v);
  }

  /** Every VM record this service knows (from the watch and its own writes). */
  vms(): Versioned<VmRecord>[] {
    return [...this.#vms.values()].filter((v): v is Versioned<VmRecord> => !!v.value);
  }

  /** The record of `name` read from the bucket now, or undefined. */
  async getVm(name: string): Promise<Versioned<VmRecord> | undefined> {
    const e = await this.kv.get(vmKey(name));
    if (!e || e.operation !== "PUT") return undefined;
    const v = { value: e.json<VmRecord>(), revision: e.revision };
    this.#apply(name, v);
    return v;
  }

  /** Creates the record of a new VM; throws {@link CasConflict} when the name exists. */
  async createVm(r: VmRecord): Promise<number> {
    try {
      const revision = await this.kv.create(vmKey(r.name), enc.encode(JSON.stringify(r)));
      this.#apply(r.name, { value: r, revision });
      return revision;
    } catch (e) {
      if (isConflict(e)) throw new CasConflict(`VM ${r.name} exists`);
      throw e;
    }
  }

  /** Writes `r` if the record is still at `revision`; throws {@link CasConflict} if not. */
  async updateVm(r: VmRecord, revision: number): Promise<number> {
    try {
      const rev = await this.kv.update(vmKey(r.name), enc.encode(JSON.stringify(r)), revision);
      this.#apply(r.name, { value: r, revision: rev });
      return rev;
    } catch (e) {
      if (isConflict(e)) throw new CasConflict(`VM ${r.name} changed meanwhile`);
      throw e;
    }
  }

  /** Deletes the record if it is still at `revision`. */
  async deleteVm(name: string, revision: number): Promise<void> {
    try {
      await this.kv.delete(vmKey(name), { previousSeq: revision });
    } catch (e) {
      if (isConflict(e)) throw new CasConflict(`VM ${name} changed meanwhile`);
      throw e;
    }
    this.#apply(name, { value: undefined, revision: revision + 1 });
  }

  /**
   * Reads the record, applies `fn` (undefined: leave it) and writes it back with
   * compare-and-set, retrying on conflicts; resolves with the result (undefined: no record).
   * `written` says whether this call wrote it: a transition another control service made
   * first reads as the same state, and only the writer may act on it (release, recreate).
   */
  async mutateVm(
    name: string,
    fn: (r: VmRecord) => VmRecord | undefined,
  ): Promise<(Versioned<VmRecord> & { written: boolean }) | undefined> {
    for (let attempt = 0;; attempt++) {
      const cur = await this.getVm(name);
      if (!cur) return undefined;
      const next = fn(structuredClone(cur.value));
      if (!next) return { ...cur, written: false };
      next.updatedMs = Date.now();
      try {
        return {
          value: next,
          revision: await this.updateVm(next, cur.revision),
          written: true,
        };
      } catch (e) {
        if (!(e instanceof CasConflict) || attempt >= 20) throw e;
      }
    }
  }

  /** The ledger of `host` and its revision (0: none yet). */
  async ledger(host: string): Promise<Versioned<HostLedger>> {
    const e = await this.kv.get(ledgerKey(host));
    if (!e || e.operation !== "PUT") return { value: { vms: {} }, revision: e?.revision ?? 0 };
    return { value: e.json<HostLedger>(), revision: e.revision };
  }

  /** Writes a ledger read at `revision` (0: new); throws {@link CasConflict} if it moved. */
  async putLedger(host: string, ledger: HostLedger, revision: number): Promise<void> {
    const data = enc.encode(JSON.stringify(ledger));
    try {
      if (revision === 0) await this.kv.create(ledgerKey(host), data);
      else await this.kv.update(ledgerKey(host), data, revision);
    } catch (e) {
      if (isConflict(e)) throw new CasConflict(`ledger of ${host} changed meanwhile`);
      throw e;
    }
  }

  /**
   * Applies `fn` to a host's ledger with compare-and-set, retrying on conflicts. Within this
   * process the changes of one host's ledger run one at a time (100 concurrent releases on
   * one host exhausted the retries otherwise, measured by control_bench), so conflicts come
   * only from other control services; retries back off with jitter.
   */
  mutateLedger(host: string, fn: (l: HostLedger) => HostLedger | undefined): Promise<void> {
    const prev = this.#ledgerChains.get(host) ?? Promise.resolve();
    const run = prev.catch(() => {}).then(async () => {
      for (let attempt = 0;; attempt++) {
        const cur = await this.ledger(host);
        const next = fn(cur.value);
        if (!next) return;
        try {
          return await this.putLedger(host, next, cur.revision);
        } catch (e) {
          if (!(e instanceof CasConflict) || attempt >= 50) throw e;
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 2 ** attempt)));
        }
      }
    });
    this.#ledgerChains.set(host, run);
    run.finally(() => {
      if (this.#ledgerChains.get(host) === run) this.#ledgerChains.delete(host);
    }).catch(() => {});
    return run;
  }

  /** Hosts that have a ledger. */
  async ledgerHosts(): Promise<string[]> {
    const out: string[] = [];
    for await (const key of await this.kv.keys("host.>")) out.push(key.slice(5));
    return out;
  }

  /** Appends an event to the stream (acknowledged by JetStream). */
  async event(e: ControlEvent): Promise<void> {
    await this.js.publish(`${EVENTS_PREFIX}.${e.vm}`, JSON.stringify(e));
  }

  /** The last `max` events (of one VM when `vm` is given), oldest first. */
  async events(vm?: string, max = 100): Promise<ControlEvent[]> {
    const jsm = this.jsm;
    const info = await jsm.streams.info(this.stream);
    const out: ControlEvent[] = [];
    const last = info.state.last_seq;
    const first = Math.max(info.state.first_seq, last - 2_000 + 1);
    const subject = vm ? `${EVENTS_PREFIX}.${vm}` : undefined;
    for (let seq = last; seq >= first && out.length < max && last > 0; seq--) {
      const m = await jsm.streams.getMessage(this.stream, { seq }).catch(() => null);
      if (!m || (subject && m.subject !== subject)) continue;
      out.push(m.json<ControlEvent>());
    }
    return out.reverse();
  }

  /** Stops the watch. */
  close(): void {
    this.#watching?.stop();
  }
}
