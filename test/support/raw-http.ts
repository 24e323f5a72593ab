import { connect } from "node:net";

/**
 * How the client sends its bytes: `end` all of them, then half-closes and reads the answer; `stall` all but the
 * last, then waits without closing; `abort` the first half, then hangs up.
 */
export type ClientMode = "end" | "stall" | "abort";

export interface RawAnswer {
  /** What the server sent, as latin1 text; "" when nothing came. */
  text: string;
  /** The status of the first response, undefined when none came. */
  status: number | undefined;
  /** The client gave up waiting: no close within timeoutMs. */
  timedOut: boolean;
}

/**
 * Sends bytes over a plain TCP connection (no HTTP client to clean the request up) and collects what comes back
 * until the server closes the connection or timeoutMs passes. Never rejects: a reset is an answer too.
 */
export function rawExchange(port: number, bytes: Buffer, mode: ClientMode, timeoutMs: number): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let timedOut = false;
    const socket = connect(port, "127.0.0.1", () => {
      if (mode === "abort") socket.end(bytes.subarray(0, bytes.length >> 1), () => socket.destroy());
      else if (mode === "end") socket.end(bytes);
      else socket.write(bytes.subarray(0, -1));
    });
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, timeoutMs);
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString("latin1");
      const status = /^HTTP\/1\.[01] (\d{3}) /.exec(text)?.[1];
      resolve({ text, status: status === undefined ? undefined : Number(status), timedOut });
    });
  });
}
