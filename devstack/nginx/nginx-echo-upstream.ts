import { freePort } from "../process/plugin-stack";
import { startNginx } from "./nginx-process";

export interface NginxEchoUpstream {
  /** http://127.0.0.1:PORT; `?delay_ms=N` sets a request's upstream latency. */
  url: string;
  close(): Promise<void>;
}

/**
 * The echo upstream on nginx (one worker): for a benchmark that saturates the gateway, where the Node echo
 * upstream would become the bottleneck and share the gateway's CPU figures.
 */
export async function startNginxEchoUpstream(): Promise<NginxEchoUpstream> {
  const port = await freePort();
  const nginx = await startNginx({ template: "echo-upstream.conf", vars: { PORT: String(port) }, ports: [port] });
  return { url: `http://127.0.0.1:${port}`, close: () => nginx.stop() };
}
