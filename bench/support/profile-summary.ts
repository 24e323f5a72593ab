import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { REPO_ROOT } from "../../devstack/kong";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  /** function (file:line), the file relative to the repository when it is ours. */
  name: string;
  selfMs: number;
  share: number;
}

/** Self time by function in a V8 .cpuprofile, largest first; (idle) and (program) are left out of the shares. */
export function summarizeProfile(path: string, top = 15): { totalMs: number; entries: ProfileEntry[] } {
  const p = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const n = byId.get(id);
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    if (!n || n.callFrame.functionName === "(idle)") return;
    const url = n.callFrame.url.replace(/^file:\/\//, "");
    const file =
      url === "" ? "" : url.startsWith(REPO_ROOT) ? relative(REPO_ROOT, url) : url.replace(/^.*node_modules\//, "");
    const name = `${n.callFrame.functionName || "(anonymous)"}${file ? ` (${file}:${n.callFrame.lineNumber + 1})` : ""}`;
    self.set(name, (self.get(name) ?? 0) + dt);
    total += dt;
  });
  const entries = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, ms]) => ({ name, selfMs: ms, share: ms / total }));
  return { totalMs: total, entries };
}
