/**
 * TLS for the bus, with certificates made locally by `openssl`: a private CA and a server
 * certificate for the addresses clients use. nats-server then requires TLS from every client
 * (`startEmbeddedNats({ tls })`, or `nats-server --tls --tlscert … --tlskey …` on another
 * host), and `connect()` verifies the server against the CA named by `VMESH_NATS_CA`. Between
 * hosts this keeps logins and guest data off the wire in clear; the logins still decide who
 * may talk to whom (credentials.ts).
 *
 * @module
 */

/** Env var naming the CA certificate (PEM) a client verifies the bus server against. */
export const CA_ENV = "VMESH_NATS_CA";

/** The files of {@link makeBusTls}. */
export interface BusTlsFiles {
  /** CA certificate (PEM): give it to clients. */
  ca: string;
  /** Server certificate (PEM), signed by the CA. */
  cert: string;
  /** Server private key (PEM, 0600). */
  key: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("openssl", { args, cwd, stdin: "null" }).output();
  } catch (e) {
    throw new Error(`cannot run openssl (apt-get install openssl): ${(e as Error).message}`);
  }
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-2).join(" | ");
    throw new Error(`openssl ${args[0]} failed: ${err}`);
  }
}

/**
 * Makes a CA and a server certificate for `hosts` (IP addresses or DNS names, the names
 * clients dial) in `dir`; keys are 0600. Valid `days` days (default 30).
 *
 * ```ts
 * const tls = await makeBusTls(runDir, ["127.0.0.1", "bus.example"]);
 * const nats = await startEmbeddedNats({ tls });
 * ```
 */
export async function makeBusTls(
  dir: string,
  hosts: string[] = ["127.0.0.1", "localhost"],
  days = 30,
): Promise<BusTlsFiles> {
  const san = hosts.map((h) => (/^[\d.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(",");
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  const d = String(days);
  await openssl(
    [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      d,
      "-subj",
      "/CN=vmesh bus CA",
    ],
    dir,
  );
  await openssl([
    "req",
    ...ec,
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=vmesh bus",
  ], dir);
  await Deno.writeTextFile(`${dir}/server.ext`, `subjectAltName=${san}\n`);
  await openssl([
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    d,
    "-extfile",
    "server.ext",
  ], dir);
  for (const k of ["ca.key", "server.key"]) await Deno.chmod(`${dir}/${k}`, 0o600);
  return { ca: `${dir}/ca.pem`, cert: `${dir}/server.pem`, key: `${dir}/server.key` };
}
