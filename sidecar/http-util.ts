import type { IncomingMessage, ServerResponse } from "node:http";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** A client's text in a message or a log line: quoted, and cut short (a request line may be 16 KiB). */
export function quoted(text: string): string {
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}...` : text);
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Reads a request body up to `limit` bytes. A larger body is refused as soon as its declared length or
 * the bytes received so far exceed the limit, without buffering the rest.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new HttpError(413, "body_too_large", `body of ${declared} bytes exceeds the limit of ${limit} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off("data", onData);
        reject(new HttpError(413, "body_too_large", `body exceeds the limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.on("end", () => resolve(Buffer.concat(chunks, size)));
    req.on("error", (err) => reject(new HttpError(400, "body_read_error", `could not read the body: ${err.message}`)));
  });
}

/**
 * Writes batches of chunks as the client takes them: when the socket's buffer is full, waits for it to drain
 * before asking for more, so a slow client holds a few chunks rather than the whole body. `written` gets each
 * chunk back once it is out (its bytes can then be reused). False if the client went away first.
 */
export async function writeChunks(
  res: ServerResponse,
  batches: Iterable<Buffer[]>,
  written: (chunk: Buffer) => void,
): Promise<boolean> {
  for (const batch of batches) {
    for (const chunk of batch) res.write(chunk, () => written(chunk));
    if (res.destroyed) return false;
    if (res.writableNeedDrain && !(await drained(res))) return false;
  }
  return !res.destroyed;
}

/**
 * A client that takes nothing for this long has given up (Prometheus's scrape timeout is at most its interval);
 * cutting it off frees the render and its chunks.
 */
const STALLED_CLIENT_MS = 30_000;

function drained(res: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      res.off("drain", onDrain);
      res.off("close", onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    const timer = setTimeout(() => {
      res.destroy();
      done(false);
    }, STALLED_CLIENT_MS);
    res.on("drain", onDrain);
    res.on("close", onClose);
  });
}
