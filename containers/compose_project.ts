/**
 * One podman-compose project of compose.yaml plus containers/compose.podman.yaml: build, up,
 * logs and a teardown that leaves no container, volume or network behind. Every command's
 * output is kept, so a failure can say what podman answered.
 *
 * ```ts
 * const p = new ComposeProject({ name: "vmeshtest", env });
 * await p.run("build");
 * await p.run("up", "-d", "cpu");
 * console.log(await p.logs("console"));
 * await p.down();
 * ```
 * @module
 */

const ROOT = new URL("..", import.meta.url).pathname;

/** The compose files, in merge order: the topology, then the podman override. */
export const COMPOSE_FILES = [`${ROOT}compose.yaml`, `${ROOT}containers/compose.podman.yaml`];

/** A podman or podman-compose command that failed. */
export class ComposeError extends Error {}

/** Options of {@link ComposeProject}. */
export interface ComposeProjectOptions {
  /** Project name: prefix of containers, volumes, images and the network. */
  name: string;
  /** Environment of podman-compose (CONTAINERS_CONF, VMESH_* of the override). */
  env: Record<string, string>;
  files?: string[];
}

/** Output of one command. */
export interface CommandOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** A podman-compose project. */
export class ComposeProject {
  readonly name: string;
  readonly env: Record<string, string>;
  readonly files: string[];

  constructor(o: ComposeProjectOptions) {
    if (!/^[a-z0-9][a-z0-9_.-]*$/.test(o.name)) {
      throw new ComposeError(`project name '${o.name}': lower-case letters, digits, _ . - only`);
    }
    this.name = o.name;
    this.env = o.env;
    this.files = o.files ?? COMPOSE_FILES;
  }

  /** The network podman-compose creates for the project's default network. */
  get network(): string {
    return `${this.name}_default`;
  }

  /** The container podman-compose 1.0 names for the first replica of `service`. */
  container(service: string): string {
    return `${this.name}_${service}_1`;
  }

  /** Runs `podman ARGS`; `check` throws with the output on a non-zero exit. */
  podman(args: string[], check = true): Promise<CommandOutput> {
    return this.#exec("podman", args, check);
  }

  /** Runs `podman-compose -p NAME -f ... ARGS`, throwing with its output on failure. */
  run(...args: string[]): Promise<CommandOutput> {
    const files = this.files.flatMap((f) => ["-f", f]);
    return this.#exec("podman-compose", ["-p", this.name, ...files, ...args], true);
  }

  /** stdout and stderr of a service's container ("" when it does not exist). */
  async logs(service: string): Promise<string> {
    const out = await this.podman(["logs", this.container(service)], false);
    return out.code === 0 ? out.stdout + out.stderr : "";
  }

  /** `podman ps -a` of the project, one line per container with its state. */
  async status(): Promise<string> {
    const out = await this.podman([
      "ps",
      "-a",
      "--filter",
      `label=io.podman.compose.project=${this.name}`,
      "--format",
      "{{.Names}} {{.Status}}",
    ], false);
    return out.stdout.trim();
  }

  /**
   * Creates the project network before `up` (podman-compose reuses an existing one), so its
   * gateway address, the host as containers see it, is known in advance.
   */
  async createNetwork(): Promise<string> {
    const exists = await this.podman(["network", "exists", this.network], false);
    if (exists.code !== 0) {
      await this.podman([
        "network",
        "create",
        "--label",
        `io.podman.compose.project=${this.name}`,
        this.network,
      ]);
    }
    const out = await this.podman([
      "network",
      "inspect",
      this.network,
      "--format",
      "{{range .Subnets}}{{.Gateway}} {{end}}",
    ]);
    const gateway = out.stdout.trim().split(/\s+/).find((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a));
    if (!gateway) throw new ComposeError(`network ${this.network} has no IPv4 gateway`);
    return gateway;
  }

  /** Removes the project's containers, volumes and network; never throws. */
  async down(): Promise<void> {
    await this.#exec("podman-compose", [
      "-p",
      this.name,
      ...this.files.flatMap((f) => ["-f", f]),
      "down",
      "-v",
      "-t",
      "5",
    ], false).catch(() => {});
    // podman-compose 1.0 leaves containers of services that were not started by `up`.
    const left = await this.podman([
      "ps",
      "-aq",
      "--filter",
      `label=io.podman.compose.project=${this.name}`,
    ], false).catch(() => undefined);
    const ids = left?.stdout.trim().split("\n").filter(Boolean) ?? [];
    if (ids.length) await this.podman(["rm", "-f", "-v", ...ids], false).catch(() => {});
    await this.podman(["network", "rm", "-f", this.network], false).catch(() => {});
  }

  async #exec(cmd: string, args: string[], check: boolean): Promise<CommandOutput> {
    const out = await new Deno.Command(cmd, {
      args,
      env: this.env,
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const r = {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
    if (check && r.code !== 0) {
      const tail = (r.stdout + r.stderr).trim().split("\n").slice(-15).join("\n");
      throw new ComposeError(`${cmd} ${args.join(" ")} failed (exit ${r.code}):\n${tail}`);
    }
    return r;
  }
}
