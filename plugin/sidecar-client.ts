import { Agent, request } from "node:http";
import type { ExporterTarget } from "./schema";

export interface SidecarResponse {
  status: number;
  text: string;
}

export interface SidecarClientTimeouts {
  /** From asking for a new connection to having it. */
  connectMs: number;
  /** From sending the request to the end of the response's body. */
  responseMs: number;
}

const DEFAULT_TIMEOUTS: SidecarClientTimeouts = { connectMs: 2_000, responseMs: 10_000 };
/** The sidecar's acknowledgement is a few dozen bytes; a longer answer is not one. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * POSTs to the latency-exporter over one keep-alive connection (TCP or Unix socket).
 * Hand-written on node:http: undici took the plugin server's RSS from 101 to 148 MiB by its first shipment.
 */
export class SidecarClient {
  // One connection: the shipper sends one payload at a time. Closed after 4 s idle (less if the sidecar's
  // Keep-Alive header asks), before the sidecar's 5 s keep-alive timeout can close it under a request.
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1, timeout: 4_000 });

  constructor(
    private readonly target: ExporterTarget,
    private readonly timeouts = DEFAULT_TIMEOUTS,
  ) {}

  /**
   * Settles exactly once: with the status and body, or with an error on a refused connection, a timeout, a
   * response over 64 KiB, or `signal`'s abort, which destroys the request at once.
   */
  post(path: string, body: string, headers: Record<string, string>, signal: AbortSignal): Promise<SidecarResponse> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(new Error("request aborted"));
      const options = {
        method: "POST",
        headers: { ...headers, "content-length": Buffer.byteLength(body) },
        agent: this.agent,
      };
      const req =
        this.target.kind === "unix"
          ? request({ ...options, socketPath: this.target.socketPath, path })
          : request(new URL(path, this.target.origin), options);
      let connectTimer: NodeJS.Timeout | undefined;
      let settled = false;
      /** True the first time only: what settles the promise must call it first. */
      const settle = () => {
        if (settled) return false;
        settled = true;
        clearTimeout(connectTimer);
        clearTimeout(responseTimer);
        signal.removeEventListener("abort", onAbort);
        return true;
      };
      const fail = (err: Error) => {
        if (!settle()) return;
        reject(err);
        // Its later errors (a reset, this destroy) reach the listeners below, which ignore them.
        req.destroy();
      };
      const onAbort = () => fail(new Error("request aborted"));
      const responseTimer = setTimeout(
        () => fail(new Error(`no complete response within ${this.timeouts.responseMs} ms`)),
        this.timeouts.responseMs,
      );
      signal.addEventListener("abort", onAbort, { once: true });
      req.on("error", fail);
      req.on("socket", (socket) => {
        if (!socket.connecting) return;
        const ms = this.timeouts.connectMs;
        connectTimer = setTimeout(() => fail(new Error(`connect timeout (${ms} ms)`)), ms);
        socket.once("connect", () => clearTimeout(connectTimer));
      });
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) fail(new Error(`response body over ${MAX_RESPONSE_BYTES} bytes`));
          else chunks.push(chunk);
        });
        res.on("end", () => {
          if (settle()) resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() });
        });
        res.on("error", fail);
        res.on("close", () => fail(new Error("connection closed before the end of the response")));
      });
      req.end(body);
    });
  }

  /** Closes the connection, and ends a request in flight with an error. */
  close(): void {
    this.agent.destroy();
  }
}
