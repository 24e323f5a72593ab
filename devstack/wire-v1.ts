import * as hdr from "hdr-histogram-js";
import { HDR_DIGITS, HDR_HIGHEST, HDR_LOWEST } from "../wire/layout";
import { readValues } from "../wire/sparse";
import type { IngestPayload, LatencyDeltaV1, ServiceDelta } from "../wire/payload";

/** A dense HDR histogram of the layout, as version 1 plugins recorded into (hdr-histogram-js). */
export function newV1Histogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: HDR_LOWEST,
    highestTrackableValue: HDR_HIGHEST,
    numberOfSignificantValueDigits: HDR_DIGITS,
    bitBucketSize: 32,
    autoResize: false,
  });
}

/** A version 1 delta of these integer latencies, encoded as version 1 plugins did. */
export function v1Delta(latencies: readonly number[]): LatencyDeltaV1 {
  const h = newV1Histogram();
  let sum = 0;
  for (const ms of latencies) {
    h.recordValue(Math.min(ms, HDR_HIGHEST));
    sum += ms;
  }
  return { count: latencies.length, sum, hdr: hdr.encodeIntoCompressedBase64(h) };
}

/** The same payload as a version 1 plugin would have sent it: every delta re-encoded from its keys. */
export function toV1(p: IngestPayload): IngestPayload<LatencyDeltaV1> {
  const services = p.services.map(({ service, latencies }): ServiceDelta<LatencyDeltaV1> => {
    const out: ServiceDelta<LatencyDeltaV1>["latencies"] = {};
    for (const [kind, d] of Object.entries(latencies) as [keyof typeof latencies, (typeof latencies)["upstream"]][]) {
      if (!d) continue;
      const h = newV1Histogram();
      const { values, counts } = readValues(d.values);
      values.forEach((v, i) => h.recordValueWithCount(v, counts[i]));
      out[kind] = { count: d.count, sum: d.sum, hdr: hdr.encodeIntoCompressedBase64(h) };
    }
    return { service, latencies: out };
  });
  return { ...p, version: 1, services };
}
