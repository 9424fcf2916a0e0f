/**
 * The one subject scheme of the bus: `vmesh.<vm>.<device>.<op>` (see proto/README.md).
 *
 * @module
 */

const TOKEN = /^[A-Za-z0-9_-]+$/;

/** Throws unless `s` is a single subject token (no dots, spaces or wildcards). */
export function checkToken(what: string, s: string): string {
  if (!TOKEN.test(s)) throw new TypeError(`${what} ${JSON.stringify(s)} is not a subject token`);
  return s;
}

/** Subject prefix of a device of a VM: `vmesh.<vm>.<device>`. */
export function devicePrefix(vm: string, device: string): string {
  return `vmesh.${checkToken("vm", vm)}.${checkToken("device", device)}`;
}

/** Subject of one operation of a device: `vmesh.<vm>.<device>.<op>`. */
export function deviceSubject(vm: string, device: string, op: string): string {
  return `${devicePrefix(vm, device)}.${checkToken("op", op)}`;
}

/** Console stream subject: `vmesh.<vm>.console.out` (guest output) or `.in` (guest input). */
export function consoleSubject(vm: string, direction: "out" | "in"): string {
  return deviceSubject(vm, "console", direction);
}

/** VM control prefix: `vmesh.<vm>.ctl` (ops start, stop, pause, resume, status). */
export function vmControlPrefix(vm: string): string {
  return devicePrefix(vm, "ctl");
}

/** Prefix of a virtual switch's request/reply ops (`join`, `leave`): `vmesh.net.<switch>`. */
export function switchPrefix(sw: string): string {
  return `vmesh.net.${checkToken("switch", sw)}`;
}

/**
 * Prefix of one switch port's subjects: `vmesh.net.<switch>.port.<port>` (frames `.tx`/`.rx`,
 * and its own `.join`/`.leave`, which only that port's user may publish to).
 */
export function netPortPrefix(sw: string, port: string): string {
  return `${switchPrefix(sw)}.port.${checkToken("port", port)}`;
}

/**
 * Frame subject of a switch port: `vmesh.net.<switch>.port.<port>.tx` (port -> switch)
 * or `.rx` (switch -> port).
 */
export function netPortSubject(sw: string, port: string, direction: "tx" | "rx"): string {
  return `${netPortPrefix(sw, port)}.${direction}`;
}

/** Prefix of the memory (page store) service: `vmesh.memory`. */
export const MEMORY_PREFIX = "vmesh.memory";

/** Subject of a memory service op: `vmesh.memory.<op>`. */
export function memorySubject(op: string): string {
  return `${MEMORY_PREFIX}.${checkToken("op", op)}`;
}

/** The last token of a subject (the op of a request subject). */
export function lastToken(subject: string): string {
  const i = subject.lastIndexOf(".");
  return i < 0 ? subject : subject.slice(i + 1);
}
