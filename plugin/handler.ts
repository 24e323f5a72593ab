import type { LatencyKind, ServiceRef } from "../wire/payload";
import type { LogPdk, SerializedLog } from "./pdk";
import { pipelineFor, type Pipeline } from "./pipeline";
import { toServiceRef } from "./recorder";
import { parseConfig, type PluginConfig } from "./schema";
import { ServiceCache } from "./service-cache";
import { log } from "./log";

const WARN_EVERY_MS = 60_000;

/**
 * Kong's rule (as in its prometheus plugin): a latency is recorded when it is a number >= 0; `proxy` is -1
 * or absent when the request was not proxied. Kong's values are integer ms; round whatever float math left.
 */
export function latencyMs(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.round(v) : undefined;
}

/**
 * The log-phase handler. It chooses the cheapest PDK calls for what it must record (see
 * bench/plugin-path for the measurements):
 * - upstream latency only: `kong.nginx.get_ctx("KONG_WAITING_TIME")` (a number, = latencies.proxy), plus
 *   the Service; for an instance scoped to a route or a service the Service is fixed for the instance's
 *   configuration, so it is looked up once and cached, leaving one small call per event;
 * - request or kong latency too: `kong.log.serialize()`, since request latency is nowhere else in the log
 *   timer (`kong.nginx.get_var` is disabled there).
 * Every path makes at least one PDK call: an event with none leaks an entry in the plugin server.
 */
export class UpstreamLatencyHandler {
  private readonly config: PluginConfig;
  private readonly pipeline: Pipeline;
  private readonly scoped: boolean;
  private readonly fromSerialize: boolean;
  private readonly cache = new ServiceCache();
  private lastWarnAt = 0;

  constructor(raw: Record<string, unknown>) {
    this.config = parseConfig(raw);
    this.pipeline = pipelineFor(this.config);
    this.scoped = typeof raw.route_id === "string" || typeof raw.service_id === "string";
    this.fromSerialize = this.config.latencies.some((k) => k !== "upstream");
  }

  async log(kong: LogPdk): Promise<void> {
    try {
      if (this.fromSerialize) {
        await this.logFromSerialize(kong);
        return;
      }
      const ms = latencyMs(await kong.nginx.getCtx("KONG_WAITING_TIME"));
      if (ms === undefined) return;
      // The hot path stays free of extra awaits: a cached Service is used synchronously.
      const ref = this.cache.get(Date.now()) ?? (await this.lookupService(kong));
      if (ref) this.pipeline.recorder.record(ref, "upstream", ms);
    } catch (err) {
      // The plugin server would log every failure; once a minute is enough to diagnose.
      const now = Date.now();
      if (now - this.lastWarnAt > WARN_EVERY_MS) {
        this.lastWarnAt = now;
        log.warn({ err: (err as Error).message }, "log phase failed; event not recorded");
      }
    }
  }

  private async lookupService(kong: LogPdk): Promise<ServiceRef | undefined> {
    const svc = await kong.router.getService();
    const ref = svc ? toServiceRef(svc) : undefined;
    if (this.scoped && ref) this.cache.set(ref, Date.now());
    return ref;
  }

  private async logFromSerialize(kong: LogPdk): Promise<void> {
    const entry = JSON.parse(await kong.log.serialize()) as SerializedLog;
    const ref = entry.service ? toServiceRef(entry.service) : undefined;
    if (!ref) return;
    const kinds: Record<LatencyKind, unknown> = {
      upstream: entry.latencies?.proxy,
      request: entry.latencies?.request,
      kong: entry.latencies?.kong,
    };
    for (const kind of this.config.latencies) {
      const ms = latencyMs(kinds[kind]);
      if (ms !== undefined) this.pipeline.recorder.record(ref, kind, ms);
    }
  }
}
