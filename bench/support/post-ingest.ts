import { performance } from "node:perf_hooks";
import { request } from "undici";

/** Generous: a 10k-service payload on a busy machine can take seconds. */
const HTTP_TIMEOUT_MS = 120_000;

/** POSTs one ingest body and checks it was applied; returns the wall ms to the acknowledgement. */
export async function postIngest(url: string, body: Buffer): Promise<number> {
  const t0 = performance.now();
  const res = await request(url, {
    method: "POST",
    body,
    headers: { "content-type": "application/json" },
    headersTimeout: HTTP_TIMEOUT_MS,
    bodyTimeout: HTTP_TIMEOUT_MS,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200 || !text.includes('"applied"'))
    throw new Error(`ingest: HTTP ${res.statusCode}: ${text.slice(0, 500)}`);
  return performance.now() - t0;
}
