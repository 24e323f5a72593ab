import { cpus, totalmem } from "node:os";

/** The machine an absolute figure comes from: cores, CPU model, memory and Node version. */
export function machineDescription(): string {
  const c = cpus();
  return `${c.length} x ${c[0]?.model?.trim() ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
}
