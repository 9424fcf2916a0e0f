/**
 * One-line summaries of the control-plane commands (cli/vm_commands.ts), apart from that module
 * so that `./vmesh --help` and `./vmesh run` start without loading the bus client.
 */
/** One-line summaries for ./vmesh --help. */
export const SUMMARIES: Record<string, string> = {
  create: "create a VM, placed on the least-loaded host that fits",
  ls: "list the VMs of the control plane",
  inspect: "print VM records as JSON",
  start: "start stopped VMs",
  stop: "stop VMs",
  rm: "remove VMs",
  logs: "print a VM's console output",
  hosts: "list the hosts and their load",
  events: "print the control plane's events (placements, exits, lost hosts)",
};
