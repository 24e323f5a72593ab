import { randomUUID } from "node:crypto";
import { makeLogContext, type KongService } from "../../devstack/kong";
import { fetchText, type ExporterProcess } from "../../devstack/process/exporter-process";
import type { startPluginStack } from "../../devstack/process/plugin-stack";
import { waitFor } from "../../devstack/process/wait";
import { parseSamples, value } from "../../devstack/prometheus/prom-text";

/** Shared by the end-to-end tests that drive the real plugin server and read the real sidecar. */
export type Stack = Awaited<ReturnType<typeof startPluginStack>>;

export { kicService } from "../../devstack/kong/kic-service";

/** The exporter's flags for an ingest on 127.0.0.1:`port` (0: any free port). */
export const exporterArgs = (port: number | string): string[] => [
  "--metrics-address",
  "127.0.0.1:0",
  "--ingest-address",
  `127.0.0.1:${port}`,
];

/** On a route by default; `global` when one instance must see several services. Returns the plugin's id. */
export function addPlugin(stack: Stack, config: Record<string, unknown>, scope: "route" | "global" = "route"): string {
  const id = randomUUID();
  stack.kong.configurePlugin({ id, ...(scope === "route" ? { routeId: randomUUID() } : {}), config });
  return id;
}

/** n events for one service, spread over two workers, all at once. */
export async function send(stack: Stack, pluginId: string, svc: KongService, n: number, ms = 42): Promise<void> {
  await Promise.all(
    Array.from({ length: n }, (_, i) => stack.kong.log(i % 2, pluginId, makeLogContext({ service: svc, proxyMs: ms }))),
  );
}

/**
 * n events over `services` in turn, 16 in flight as Kong's timers run them; each event's own time, in ms,
 * sorted.
 */
export async function timedEvents(stack: Stack, pluginId: string, services: KongService[], n: number) {
  const durations: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let i = next++; i < n; i = next++) {
        const t0 = process.hrtime.bigint();
        await stack.kong.log(i % 2, pluginId, makeLogContext({ service: services[i % services.length], proxyMs: 10 }));
        durations.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }),
  );
  return durations.sort((a, b) => a - b);
}

export async function sample(
  exp: ExporterProcess,
  name: string,
  match: Record<string, string>,
): Promise<number | undefined> {
  return value(parseSamples(await fetchText(`${exp.metricsUrl}/metrics`)), name, match);
}

export function countReaches(exp: ExporterProcess, kongService: string, n: number, timeoutMs = 20_000): Promise<true> {
  return waitFor(
    `${kongService} count to reach ${n}`,
    async () =>
      (await sample(exp, "kong_upstream_latency_ms_count", { kong_service: kongService })) === n ? true : undefined,
    timeoutMs,
  );
}
