import { createServer } from "node:net";
import { join } from "node:path";
import { KongEmulator, PluginServer, REPO_ROOT } from "../kong";

export const PRODUCT_PLUGIN_DIR = join(REPO_ROOT, "dist", "plugin");

/** A TCP port that was free a moment ago, for a sidecar that must start later on a known address. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The real plugin server running the built upstream-latency plugin, and a Kong node driving it. */
export async function startPluginStack(
  workers = 2,
  env?: Record<string, string>,
): Promise<{ server: PluginServer; kong: KongEmulator; close(): Promise<void> }> {
  const server = await PluginServer.start({ pluginsDir: PRODUCT_PLUGIN_DIR, sockName: "upstream-latency.sock", env });
  const kong = new KongEmulator({ socketPath: server.socketPath, pluginName: "upstream-latency", workers });
  return {
    server,
    kong,
    async close() {
      kong.close();
      await server.stop();
    },
  };
}
