import fc from "fast-check";
import type { ClientMode } from "./raw-http";

/** Raw requests for fuzzing an HTTP/1 listener: mostly near-valid HTTP/1.1, some not HTTP/1 at all. */

const METHOD = fc.oneof(
  { weight: 16, arbitrary: fc.constantFrom("GET", "GET", "HEAD", "POST") },
  { weight: 3, arbitrary: fc.constantFrom("PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "PRI", "get") },
  { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
);

const ROUTE = fc.constantFrom("/metrics", "/healthz", "/readyz", "/v1/latency", "/v1/ingest", "/", "//");

const SEGMENT = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom("", ".", "..", "%2e%2e", "%2F", "%00", "%zz", "%", "%4", "%C3%A9", "%ff") },
  {
    weight: 3,
    arbitrary: fc.constantFrom("metrics", "v1", "ingest", ";x", "@", ":", "*", "#", "|{}^`\\", "\0", "é", " "),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);

const PARAM_NAME = fc.constantFrom(
  "namespace",
  "service",
  "kong_service",
  "kubernetes_kind",
  "latency",
  "",
  "x",
  "%zz",
);
const PARAM_VALUE = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom("", "default", "echo", "upstream", "kong", "%", "%zz", "%00", "%C3%A9", "%ff"),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 16 }) },
);
const QUERY = fc
  .array(
    fc.oneof(
      fc.tuple(PARAM_NAME, PARAM_VALUE).map(([k, v]) => `${k}=${v}`),
      PARAM_NAME,
    ),
    { maxLength: 6 },
  )
  .map((params) => params.join("&"));

const ORIGIN_FORM = fc
  .tuple(
    ROUTE,
    fc.oneof({ weight: 2, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(SEGMENT, { maxLength: 3 }) }),
    fc.option(QUERY, { nil: undefined }),
  )
  .map(
    ([route, segments, query]) =>
      route + segments.map((s) => `/${s}`).join("") + (query === undefined ? "" : `?${query}`),
  );

const TARGET = fc.oneof(
  { weight: 10, arbitrary: ORIGIN_FORM },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "//",
      "///",
      "//metrics",
      "/%zz",
      "*",
      "",
      "?",
      "/?",
      "/#x",
      "/../metrics",
      "/./healthz",
      "127.0.0.1:9542",
    ),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.constantFrom("http://", "https://", "HTTP://", "http:", "ftp://"),
        fc.constantFrom("x", "127.0.0.1:9542", "[::1]", "u@h", "", "%zz", "localhost:9542"),
        ORIGIN_FORM,
      )
      .map(([scheme, authority, rest]) => scheme + authority + rest),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom("/", "/metrics?", "/v1/latency?service="), fc.integer({ min: 1_000, max: 20_000 }))
      .map(([prefix, n]) => prefix + "a".repeat(n)),
  },
);

const VERSION = fc.oneof(
  { weight: 16, arbitrary: fc.constant("HTTP/1.1") },
  { weight: 1, arbitrary: fc.constant("HTTP/1.0") },
  { weight: 1, arbitrary: fc.constantFrom("HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "http/1.1", "HTTP/1.1 x", "") },
);

/** Headers Node parses: odd values for the handlers to take. */
const SAFE_HEADER = fc.constantFrom<[string, string]>(
  ["Accept", "*/*"],
  ["Accept", "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"],
  ["Accept", ""],
  ["Accept", ";;q=x,,*/*;q=-1"],
  ["Accept", "\xff\xfe"],
  ["Accept", "a".repeat(4_000)],
  ["Content-Type", "application/json"],
  ["Content-Type", "application/json; charset=utf-8"],
  ["Content-Type", "text/plain"],
  ["Content-Length", "0"],
  ["Content-Length", "5"],
  ["Transfer-Encoding", "chunked"],
  ["Connection", "close"],
  ["Connection", "Upgrade, HTTP2-Settings"],
  ["Upgrade", "websocket"],
  ["Upgrade", "h2c"],
  ["HTTP2-Settings", "AAMAAABkAAQAAP__"],
  ["Expect", "100-continue"],
  ["Expect", "bogus"],
  ["Authorization", "Bearer x"],
  ["Authorization", ""],
  ["Host", ""],
  ["X-Forwarded-For", "10.0.0.1, 10.0.0.2"],
);

/** Headers Node's parser refuses, or too large. */
const HOSTILE_HEADER = fc.oneof(
  fc.constantFrom<[string, string]>(
    ["Accept", "text/html\0"],
    ["Content-Length", "-1"],
    ["Content-Length", "99999999999999999999"],
    ["Content-Length", "1, 2"],
    ["Transfer-Encoding", "gzip, chunked"],
    ["Transfer-Encoding", "bogus"],
    ["", "no name"],
    ["Bad Name", "x"],
    ["X-Folded", "a\r\n b"],
  ),
  fc.tuple(fc.string({ minLength: 1, maxLength: 16 }), fc.string({ maxLength: 32 })),
  fc.integer({ min: 1_000, max: 40_000 }).map((n): [string, string] => ["X-Huge", "h".repeat(n)]),
);

const HEADERS = fc.oneof(
  { weight: 4, arbitrary: fc.array(SAFE_HEADER, { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.array(fc.oneof(SAFE_HEADER, HOSTILE_HEADER), { minLength: 1, maxLength: 4 }) },
);

const BODY = fc.oneof(
  fc.constant(Buffer.alloc(0)),
  fc
    .constantFrom("{}", '{"version":1}', "null", "[", "hello", "5\r\nhello\r\n0\r\n\r\n", "zz\r\nx\r\n")
    .map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
);

const HTTP1 = fc
  .record({
    method: METHOD,
    target: TARGET,
    version: VERSION,
    host: fc.option(fc.constant("127.0.0.1"), { nil: undefined, freq: 10 }),
    headers: HEADERS,
    eol: fc.oneof({ weight: 19, arbitrary: fc.constant("\r\n") }, { weight: 1, arbitrary: fc.constant("\n") }),
    body: BODY,
    // Mostly a body framed as such, so that the request reaches a handler rather than being its own garbage.
    framed: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  })
  .map(({ method, target, version, host, headers, eol, body, framed }) => {
    const lines = [`${method} ${target} ${version}`.trimEnd()];
    if (host !== undefined) lines.push(`Host: ${host}`);
    for (const [name, value] of headers) lines.push(`${name}: ${value}`);
    if (framed && body.length > 0) lines.push(`Content-Length: ${body.length}`);
    return Buffer.concat([Buffer.from(lines.join(eol) + eol + eol), body]);
  });

const HTTP09 = fc.tuple(fc.constantFrom("GET", "POST"), TARGET).map(([m, t]) => Buffer.from(`${m} ${t}\r\n`));

/** The HTTP/2 connection preface, a SETTINGS frame, then anything. */
const HTTP2 = fc
  .uint8Array({ maxLength: 100 })
  .map((b) =>
    Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]), b]),
  );

/** A TLS record holding a ClientHello: what a client configured for https sends first. */
const TLS_HELLO = fc.uint8Array({ minLength: 40, maxLength: 300 }).map((b) => {
  const hello = Buffer.concat([Buffer.from([3, 3]), b]);
  const handshake = Buffer.concat([Buffer.from([1, 0, hello.length >> 8, hello.length & 255]), hello]);
  return Buffer.concat([Buffer.from([0x16, 3, 1, handshake.length >> 8, handshake.length & 255]), handshake]);
});

export interface FuzzRequest {
  listener: "metrics" | "ingest";
  bytes: Buffer;
  mode: ClientMode;
}

export const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc.record({
  listener: fc.constantFrom("metrics", "ingest"),
  bytes: fc.oneof(
    { weight: 40, arbitrary: HTTP1 },
    { weight: 1, arbitrary: HTTP09 },
    { weight: 1, arbitrary: HTTP2 },
    { weight: 1, arbitrary: TLS_HELLO },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 200 }).map((b) => Buffer.from(b)) },
  ),
  mode: fc.oneof(
    { weight: 96, arbitrary: fc.constant<ClientMode>("end") },
    { weight: 3, arbitrary: fc.constant<ClientMode>("abort") },
    { weight: 1, arbitrary: fc.constant<ClientMode>("stall") },
  ),
});
