import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KongEmulator, PluginServer } from "../kong";
import { preloadOptions, probeHeap, SIGNAL_PROBE } from "./child-probe";

export interface ProbedServer {
  server: PluginServer;
  kong: KongEmulator;
  /** Heap used plus array buffers (where the plugin's table of latency counts lives) after a full GC, in bytes. */
  memory(): Promise<number>;
  close(): Promise<void>;
}

/** A real plugin server for the plugin(s) in `pluginsDir`, with the signal probe preloaded, and a Kong node. */
export async function startProbedServer(pluginsDir: string, pluginName: string, workers = 2): Promise<ProbedServer> {
  const dir = mkdtempSync(join(tmpdir(), "plugin-probe-"));
  const file = join(dir, "probe.jsonl");
  const env = { NODE_OPTIONS: preloadOptions(SIGNAL_PROBE), SIGNAL_PROBE_FILE: file };
  const server = await PluginServer.start({ pluginsDir, sockName: `${pluginName}.sock`, env });
  const kong = new KongEmulator({ socketPath: server.socketPath, pluginName, workers });
  return {
    server,
    kong,
    async memory() {
      const s = await probeHeap(server.pid!, file);
      return s.heapUsed + s.arrayBuffers;
    },
    async close() {
      kong.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
