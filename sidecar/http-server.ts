import {
  createServer,
  STATUS_CODES,
  type IncomingMessage,
  type Server,
  type ServerOptions,
  type ServerResponse,
} from "node:http";
import type { Duplex } from "node:stream";
import { HttpError, quoted, sendJson } from "./http-util";
import type { Logger } from "./log";

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/**
 * An HTTP server no request can crash: whatever the handler throws is answered here, an HttpError with its
 * 4xx, anything else (our bug) with a 500 and one log line; a request Node cannot parse gets a 4xx too.
 */
export function createSafeServer(name: string, options: ServerOptions, log: Logger, handler: Handler): Server {
  const server = createServer(options, (req, res) => {
    // The executor turns a handler that throws before returning its promise into a rejection too.
    new Promise<void>((resolve) => resolve(handler(req, res))).catch((err: unknown) => {
      if (!(err instanceof HttpError))
        log.error({ err, listener: name, method: req.method, target: quoted(req.url ?? "") }, "request failed");
      answerError(res, err);
    });
  });
  server.on("clientError", answerClientError);
  return server;
}

function answerError(res: ServerResponse, err: unknown): void {
  // A body under way cannot turn into an error: cut it short, so the client sees it incomplete.
  if (res.headersSent) {
    if (!res.writableEnded) res.destroy();
    return;
  }
  // A request body left unread is discarded by Node as it arrives; closing the connection instead could
  // reset it before the client has read the answer.
  if (err instanceof HttpError) sendJson(res, err.status, { error: err.message });
  else sendJson(res, 500, { error: "internal error" });
}

/** Node's own answers to what its parser refuses (node:_http_server socketOnError), with a message. */
const PARSE_ERRORS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, "request headers are too large"],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, "chunk extensions are too large"],
  ERR_HTTP_REQUEST_TIMEOUT: [408, "the request did not arrive within --request-timeout"],
};

/**
 * A preamble that is not HTTP/1 (TLS, HTTP/2, garbage), a malformed request, or one too slow: answered on the
 * socket, which is then closed. A response already under way is not corrupted by a second one.
 */
function answerClientError(err: Error & { code?: string; reason?: string }, socket: Duplex): void {
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) {
    const [status, message] = PARSE_ERRORS[err.code ?? ""] ?? [
      400,
      `malformed HTTP request: ${err.reason ?? err.message}`,
    ];
    const body = JSON.stringify({ error: message });
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
