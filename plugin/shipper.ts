import { readFileSync } from "node:fs";
import { INGEST_PATH, WIRE_VERSION, type IngestAck, type IngestPayload } from "../wire/payload";
import type { ExporterTarget } from "./schema";
import { SidecarClient } from "./sidecar-client";
import type { Batch, Recorder } from "./recorder";
import { log } from "./log";

const MAX_BACKOFF_MS = 30_000;

interface Pending {
  payload: string;
  seq: number;
  events: number;
}

/**
 * Ships the recorder's deltas, one payload at a time. A payload is retried with the same seq until the
 * sidecar acknowledges it (the sidecar drops a seq it already applied), while new events keep merging into
 * the recorder; so a slow or absent sidecar costs bounded memory and nothing on the proxy path.
 */
export class Shipper {
  private readonly client: SidecarClient;
  private seq = 0;
  private pending: Pending | undefined;
  private rejected = 0;
  private failures = 0;
  private nextAttemptAt = 0;
  private busy = false;
  private timer: NodeJS.Timeout | undefined;
  /** Aborted at the shutdown deadline: a request in flight must not hold the exit for its 10 s timeout. */
  private readonly stopping = new AbortController();

  constructor(
    private readonly recorder: Recorder,
    private readonly source: string,
    target: ExporterTarget,
    private intervalMs: number,
    private readonly tokenFile: string | undefined,
  ) {
    this.client = new SidecarClient(target);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      // A rejection left unhandled would end the plugin server, and the deltas it holds with it.
      this.tick().catch((err: unknown) => log.error({ err }, "shipping step failed"));
    }, this.intervalMs);
    // The plugin server must be free to exit (Kong stops it with a signal); shipping never holds it.
    this.timer.unref();
  }

  setInterval(ms: number): void {
    if (ms === this.intervalMs) return;
    this.intervalMs = ms;
    if (this.timer) {
      this.stopTimer();
      this.start();
    }
  }

  /** True while deltas wait: unsent, or sent and not acknowledged. */
  hasUnsent(): boolean {
    return this.pending !== undefined || !this.recorder.isEmpty() || this.rejected > 0;
  }

  /** One shipping step: at most one request. A failed shipment is retried later; only a bug of ours rejects. */
  async tick(now = Date.now()): Promise<void> {
    if (this.busy || now < this.nextAttemptAt) return;
    this.busy = true;
    try {
      if (!this.pending) {
        if (this.recorder.isEmpty() && this.rejected === 0) return;
        this.pending = this.build(this.recorder.take());
      }
      await this.send(this.pending);
    } finally {
      this.busy = false;
    }
  }

  private build(batch: Batch): Pending {
    const payload: IngestPayload = {
      version: WIRE_VERSION,
      source: this.source,
      seq: ++this.seq,
      dropped: { overflow: batch.overflow, rejected: this.rejected },
      services: batch.services,
    };
    this.rejected = 0;
    const events = batch.services.reduce((n, s) => n + Math.max(...Object.values(s.latencies).map((d) => d.count)), 0);
    return { payload: JSON.stringify(payload), seq: payload.seq, events };
  }

  private async send(p: Pending): Promise<void> {
    const headers = this.headers();
    if (!headers) return;
    let status: number;
    let text: string;
    try {
      ({ status, text } = await this.client.post(INGEST_PATH, p.payload, headers, this.stopping.signal));
    } catch (err) {
      return this.failed(`${(err as Error).message}`);
    }
    if (status >= 200 && status < 300) {
      const ack = safeJson(text) as Partial<IngestAck> | undefined;
      if (ack?.seq !== p.seq) return this.failed(`acknowledgement for seq ${ack?.seq} while sending seq ${p.seq}`);
      if (this.failures > 0)
        log.info({ seq: p.seq, failures: this.failures }, "latency-exporter reachable again; deltas delivered");
      this.pending = undefined;
      this.failures = 0;
      this.nextAttemptAt = 0;
      return;
    }
    // 401/403 (a token being rotated), 408 and 429 are worth retrying; other 4xx are about the payload.
    if (status >= 400 && status < 500 && ![401, 403, 408, 429].includes(status)) {
      // Resending a payload the sidecar judged invalid would block every later one: drop it, and report
      // its events as rejected in the next payload so the loss is visible in the sidecar's metrics.
      log.error(
        { seq: p.seq, status, reason: text.slice(0, 500), events: p.events },
        "latency-exporter refused a payload; its events are dropped",
      );
      this.rejected += p.events;
      this.pending = undefined;
      return;
    }
    return this.failed(`HTTP ${status}: ${text.slice(0, 200)}`);
  }

  /** The token file is read for every shipment, so a rotated Secret is picked up without a restart. */
  private headers(): Record<string, string> | undefined {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.tokenFile) {
      try {
        headers.authorization = `Bearer ${readFileSync(this.tokenFile, "utf8").trim()}`;
      } catch (err) {
        this.failed(`cannot read exporter_token_file: ${(err as Error).message}`);
        return undefined;
      }
    }
    return headers;
  }

  private failed(reason: string): void {
    this.failures++;
    const backoff = Math.min(MAX_BACKOFF_MS, this.intervalMs * 2 ** Math.min(this.failures, 16));
    this.nextAttemptAt = Date.now() + backoff * (0.5 + Math.random() / 2);
    if (this.failures === 1 || this.failures % 10 === 0) {
      log.warn(
        { failures: this.failures, reason, retryInMs: Math.round(this.nextAttemptAt - Date.now()) },
        "cannot ship latency deltas; keeping them merged and retrying",
      );
    }
  }

  private stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Ships everything left, retrying without backoff, until done or `deadline` (epoch ms), when a request
   * still in flight is aborted. For shutdown: the timer stops, so nothing new is started behind it.
   */
  async drain(deadline: number): Promise<boolean> {
    this.stopTimer();
    const abort = setTimeout(() => this.stopping.abort(), Math.max(0, deadline - Date.now()));
    try {
      while (this.hasUnsent() && Date.now() < deadline) {
        this.nextAttemptAt = 0;
        await this.tick();
        if (this.hasUnsent()) await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      clearTimeout(abort);
    }
    return !this.hasUnsent();
  }

  close(): void {
    this.stopTimer();
    this.client.close();
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
