import type { IngestAck } from "../wire/payload";
import { PayloadError, validatePayload } from "../wire/validate";
import type { Dedup } from "./dedup";
import { HttpError } from "./http-util";
import type { SelfMetrics } from "./self-metrics";
import type { Store } from "./store";

/**
 * The ingest decision for one request body, without sockets: parse, validate everything, then either
 * acknowledge a duplicate or apply. Throws HttpError (4xx) naming the problem; state is then unchanged.
 */
export function ingest(body: Buffer, store: Store, dedup: Dedup, metrics: SelfMetrics): IngestAck {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new HttpError(400, "invalid_json", `body is not JSON: ${(err as Error).message}`);
  }
  let valid;
  try {
    valid = validatePayload(parsed);
  } catch (err) {
    if (err instanceof PayloadError) throw new HttpError(400, "invalid_payload", err.message);
    throw err;
  }
  const { source, seq, dropped, services } = valid.payload;
  if (dedup.isDuplicate(source, seq)) {
    metrics.payloads.inc({ result: "duplicate" });
    return { status: "duplicate", seq };
  }
  const { overflowEvents } = store.apply(valid);
  if (overflowEvents) metrics.seriesOverflow.inc(overflowEvents);
  dedup.commit(source, seq);
  metrics.payloads.inc({ result: "applied" });
  if (dropped.overflow) metrics.droppedEvents.inc({ reason: "overflow" }, dropped.overflow);
  if (dropped.rejected) metrics.droppedEvents.inc({ reason: "rejected" }, dropped.rejected);
  for (const s of services) {
    for (const [kind, d] of Object.entries(s.latencies)) if (d.count) metrics.events.inc({ kind }, d.count);
  }
  return { status: "applied", seq };
}
