import { randomUUID } from "node:crypto";
import type { HeaderTable, LogContext } from "./pdk-answers";

/** The default workspace's id, as in every entity Kong serializes. */
export const DEFAULT_WORKSPACE_ID = "0dc6f45b-8f8d-40d2-a504-473544ee190b";

/** A Kong Service entity as the router keeps it in ngx.ctx.service (unset fields are null, cjson.null in Lua). */
export interface KongService {
  id: string;
  name: string | null;
  host: string;
  port: number;
  protocol: string;
  path: string | null;
  retries: number;
  connect_timeout: number;
  write_timeout: number;
  read_timeout: number;
  tags: string[] | null;
  enabled: boolean;
  created_at: number;
  updated_at: number;
  ws_id: string;
  client_certificate: { id: string } | null;
  tls_verify: boolean | null;
  tls_verify_depth: number | null;
  ca_certificates: string[] | null;
}

export interface KongRoute {
  id: string;
  name: string | null;
  protocols: string[];
  methods: string[] | null;
  hosts: string[] | null;
  paths: string[] | null;
  headers: Record<string, string[]> | null;
  snis: string[] | null;
  sources: unknown[] | null;
  destinations: unknown[] | null;
  strip_path: boolean;
  preserve_host: boolean;
  regex_priority: number;
  path_handling: string;
  https_redirect_status_code: number;
  request_buffering: boolean;
  response_buffering: boolean;
  tags: string[] | null;
  service: { id: string };
  ws_id: string;
  created_at: number;
  updated_at: number;
}

export interface ServiceOptions {
  id?: string;
  /** Kong Ingress Controller names Services `<namespace>.<k8s service>.<port>`; null is allowed by Kong. */
  name?: string | null;
  host?: string;
  port?: number;
  /** Defaults to the tags Kong Ingress Controller puts on a Service it made from a Kubernetes Service. */
  tags?: string[] | null;
}

const CREATED_AT = 1_732_700_000;

/** A full Service entity; by default the one Kong Ingress Controller makes for Kubernetes Service default/echo:80. */
export function makeService(options: ServiceOptions = {}): KongService {
  const port = options.port ?? 80;
  return {
    id: options.id ?? randomUUID(),
    name: options.name === undefined ? `default.echo.${port}` : options.name,
    host: options.host ?? `echo.default.${port}.svc`,
    port,
    protocol: "http",
    path: "/",
    retries: 5,
    connect_timeout: 60_000,
    write_timeout: 60_000,
    read_timeout: 60_000,
    tags: options.tags === undefined ? kicTags("echo", "default", "Service") : options.tags,
    enabled: true,
    created_at: CREATED_AT,
    updated_at: CREATED_AT,
    ws_id: DEFAULT_WORKSPACE_ID,
    client_certificate: null,
    tls_verify: null,
    tls_verify_depth: null,
    ca_certificates: null,
  };
}

export interface RouteOptions {
  id?: string;
  name?: string | null;
  paths?: string[];
  tags?: string[] | null;
}

/** A Route entity pointing at `service`, shaped like one Kong Ingress Controller makes from an Ingress rule. */
export function makeRoute(service: KongService, options: RouteOptions = {}): KongRoute {
  return {
    id: options.id ?? randomUUID(),
    name: options.name === undefined ? "default.echo.echo.kong.example.com.80" : options.name,
    protocols: ["http", "https"],
    methods: null,
    hosts: ["kong.example.com"],
    paths: options.paths ?? ["/echo"],
    headers: null,
    snis: null,
    sources: null,
    destinations: null,
    strip_path: true,
    preserve_host: true,
    regex_priority: 0,
    path_handling: "v0",
    https_redirect_status_code: 426,
    request_buffering: true,
    response_buffering: true,
    tags: options.tags === undefined ? kicTags("echo", "default", "Ingress", "networking.k8s.io") : options.tags,
    service: { id: service.id },
    ws_id: DEFAULT_WORKSPACE_ID,
    created_at: CREATED_AT,
    updated_at: CREATED_AT,
  };
}

/** The tags Kong Ingress Controller puts on the Kong entities it makes for a Kubernetes object. */
export function kicTags(name: string, namespace: string, kind: string, group = ""): string[] {
  return [
    `k8s-name:${name}`,
    `k8s-namespace:${namespace}`,
    `k8s-kind:${kind}`,
    `k8s-uid:${randomUUID()}`,
    `k8s-group:${group}`,
    "k8s-version:v1",
  ];
}

export interface LogContextOptions {
  /** null: no Route matched, so no Service either (Kong answered 404 itself). */
  service: KongService | null;
  /** Defaults to a Route for the Service; null for none. */
  route?: KongRoute | null;
  /** KONG_WAITING_TIME: first upstream byte minus end of balancing. Undefined or -1: not proxied. */
  proxyMs?: number;
  /** Kong's own time (latencies.kong); default 1. */
  kongMs?: number;
  /** Part of kongMs spent receiving the upstream body (KONG_RECEIVE_TIME); default 0. */
  receiveMs?: number;
  /** latencies.request; default proxy + kong. */
  requestMs?: number;
  /** Default 200 when proxied, 404 when not. */
  status?: number;
  method?: string;
  /** Request path and query; default under the Route's first path. */
  uri?: string;
  /** Epoch ms the request started; default now. */
  startedAt?: number;
  clientIp?: string;
}

/**
 * The saved context of one request's log phase: kong.log.serialize()'s table (about 2.9 KB as JSON, with
 * browser-like request headers and a typical response) and the ngx.ctx values it was built from, consistent
 * with each other as Kong's log.lua computes them.
 */
export function makeLogContext(options: LogContextOptions): LogContext {
  const service = options.service;
  const route = options.route === undefined ? (service ? makeRoute(service) : null) : options.route;
  const proxied = service !== null && options.proxyMs !== undefined && options.proxyMs >= 0;
  const kongMs = options.kongMs ?? 1;
  const receiveMs = options.receiveMs ?? 0;
  const proxyMs = proxied ? (options.proxyMs as number) : -1;
  const requestMs = options.requestMs ?? (proxied ? proxyMs : 0) + kongMs;
  const status = options.status ?? (proxied ? 200 : 404);
  const method = options.method ?? "GET";
  const uri = options.uri ?? `${route?.paths?.[0] ?? ""}/api/v1/items?page=2&per_page=50`;
  const startedAt = options.startedAt ?? Date.now();
  const clientIp = options.clientIp ?? "10.244.1.1";
  const requestId = randomUUID().replace(/-/g, "").slice(0, 24);

  const ngxCtx: Record<string, unknown> = {
    KONG_PROCESSING_START: startedAt,
    KONG_RECEIVE_TIME: receiveMs,
    workspace: DEFAULT_WORKSPACE_ID,
  };
  if (service) ngxCtx.service = service;
  if (route) ngxCtx.route = route;
  if (proxied) {
    ngxCtx.KONG_PROXIED = true;
    ngxCtx.KONG_WAITING_TIME = proxyMs;
    ngxCtx.KONG_PROXY_LATENCY = kongMs - receiveMs;
  } else {
    ngxCtx.KONG_RESPONSE_LATENCY = kongMs - receiveMs;
    if (service) ngxCtx.KONG_EXITED = true;
  }

  const requestHeaders = requestHeadersFor(clientIp, requestId);
  const responseHeaders = responseHeadersFor(proxied, proxyMs, kongMs, requestId);
  const query = uri.includes("?") ? uri.slice(uri.indexOf("?") + 1) : "";
  const serialize: Record<string, unknown> = {
    request: {
      uri,
      url: `http://kong.example.com:8000${uri}`,
      querystring: Object.fromEntries(new URLSearchParams(query)),
      method,
      // log.lua redacts credentials in the serialized copy only.
      headers: { ...requestHeaders, authorization: "REDACTED" },
      size: 612,
    },
    upstream_uri: proxied ? uri.replace(route?.paths?.[0] ?? "", "") : "",
    response: { status, headers: responseHeaders, size: 1_268 },
    latencies: { kong: kongMs, proxy: proxyMs, request: requestMs, receive: receiveMs },
    client_ip: clientIp,
    started_at: startedAt,
    source: proxied ? "service" : service ? "exit" : "error",
    workspace: DEFAULT_WORKSPACE_ID,
    workspace_name: "default",
  };
  if (service && proxied) {
    serialize.upstream_status = String(status);
    serialize.tries = [
      { balancer_latency: 0, port: service.port, balancer_start: startedAt + kongMs, ip: "10.244.0.17" },
    ];
  }
  if (route) serialize.route = route;
  if (service) serialize.service = service;

  return {
    serialize,
    ngxCtx,
    ctxShared: {},
    requestHeaders,
    responseHeaders,
    responseStatus: status,
    reqStartTime: startedAt / 1000,
  };
}

function requestHeadersFor(clientIp: string, requestId: string): HeaderTable {
  return {
    host: "kong.example.com",
    "user-agent":
      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    accept: "application/json, text/plain, */*",
    "accept-encoding": "gzip, deflate, br, zstd",
    "accept-language": "en-US,en;q=0.9",
    "x-forwarded-for": `203.0.113.7, ${clientIp}`,
    "x-forwarded-proto": "https",
    "x-request-id": requestId,
    traceparent: `00-${requestId}${requestId.slice(0, 8)}-${requestId.slice(0, 16)}-01`,
    cookie: "session=9f1c2e7a4b6d8e0f; theme=dark",
    authorization: "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJl",
  };
}

function responseHeadersFor(proxied: boolean, proxyMs: number, kongMs: number, requestId: string): HeaderTable {
  const headers: HeaderTable = {
    "content-type": "application/json; charset=utf-8",
    "content-length": "842",
    connection: "keep-alive",
    date: "Wed, 27 Nov 2024 20:57:00 GMT",
    "x-kong-request-id": requestId,
    via: "1.1 kong/3.9.0",
  };
  if (proxied) {
    headers["x-kong-upstream-latency"] = String(proxyMs);
    headers["x-kong-proxy-latency"] = String(kongMs);
    headers["cache-control"] = "no-cache, no-store, must-revalidate";
    headers.etag = 'W/"34a-19e3b4c2d5f"';
    headers.vary = ["Origin", "Accept-Encoding"];
    headers["access-control-allow-origin"] = "https://app.example.com";
  } else {
    headers["x-kong-response-latency"] = String(kongMs);
    headers.server = "kong/3.9.0";
  }
  return headers;
}
