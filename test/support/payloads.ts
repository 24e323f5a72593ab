import { Recorder } from "../../plugin/recorder";
import { WIRE_VERSION, type IngestPayload, type LatencyKind, type ServiceRef } from "../../wire/payload";

export function service(
  id: string,
  name: string | null,
  tags: string[] = [],
  host: string | null = "example.internal",
): ServiceRef {
  return { id, name, host, tags };
}

/** A payload as the plugin builds it, from (service, kind, ms) observations. */
export function makePayload(
  observations: Array<[ServiceRef, LatencyKind, number]>,
  opts: { source?: string; seq?: number } = {},
): IngestPayload {
  const r = new Recorder(1000);
  for (const [svc, kind, ms] of observations) r.record(svc, kind, ms);
  const batch = r.take();
  return {
    version: WIRE_VERSION,
    source: opts.source ?? "test-source",
    seq: opts.seq ?? 1,
    dropped: { overflow: batch.overflow, rejected: 0 },
    services: batch.services,
  };
}
