import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { preloadOptions, probeHeap, SIGNAL_PROBE } from "../../devstack/process/child-probe";
import { startPluginStack } from "../../devstack/process/plugin-stack";
import type { Stack } from "./plugin-events";

/** The size of one histogram's counts (13,312 32-bit slots): what the plugin holds per Service and kind. */
export const HISTOGRAM_COUNTS_BYTES = 53_248;

/**
 * The plugin stack with the signal probe preloaded into the plugin server: `memory()` is its heap used plus
 * array buffers (where the histograms' counts live) after a full GC, in bytes.
 */
export async function startProbedPluginStack(): Promise<Stack & { memory(): Promise<number> }> {
  const dir = mkdtempSync(join(tmpdir(), "plugin-probe-"));
  const file = join(dir, "probe.jsonl");
  const stack = await startPluginStack(2, { NODE_OPTIONS: preloadOptions(SIGNAL_PROBE), SIGNAL_PROBE_FILE: file });
  return {
    ...stack,
    async memory() {
      const s = await probeHeap(stack.server.pid!, file);
      return s.heapUsed + s.arrayBuffers;
    },
    async close() {
      await stack.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
