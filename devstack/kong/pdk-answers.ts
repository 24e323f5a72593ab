import { cjsonEncode } from "./cjson";

/** Header tables as ngx.req.get_headers()/ngx.resp.get_headers() return them: lowercase names, repeats as lists. */
export type HeaderTable = Record<string, string | string[]>;

/** What Kong saves when a request's log phase runs, for the timer that later calls the external plugin. */
export interface LogContext {
  /** kong.log.serialize(), taken in the log phase. */
  serialize: Record<string, unknown>;
  /** The clone of ngx.ctx (KONG_WAITING_TIME, KONG_PROXIED, service, route, ...). */
  ngxCtx: Record<string, unknown>;
  ctxShared: Record<string, unknown>;
  requestHeaders: HeaderTable;
  responseHeaders: HeaderTable;
  /** ngx.status. */
  responseStatus: number;
  /** ngx.req.start_time(): seconds, with millisecond decimals. */
  reqStartTime: number;
}

/** The saved context of one plugin's log handler: the request's plus the id of the plugin it ran for. */
export interface SavedLogContext extends LogContext {
  pluginId: string;
}

/** A PDK call as the plugin server sends it in `Data`: the JS camelCase name already snake_cased. */
export interface PdkCall {
  Method: string;
  Args: unknown[];
}

export type StepMethod =
  | "plugin.Step"
  | "plugin.StepError"
  | "plugin.StepService"
  | "plugin.StepRoute"
  | "plugin.StepConsumer"
  | "plugin.StepCredential"
  | "plugin.StepMemoryStats"
  | "plugin.StepMultiMap";

export interface PdkAnswer {
  step: StepMethod;
  /** The step's `Data`; undefined is Lua nil, which Kong leaves out of the map. For StepError, the message. */
  data?: unknown;
  /** What the plugin wrote through kong.log.<level>(...), which Kong would put in its error log. */
  pluginLog?: { level: string; message: string };
  /** What Kong itself logs as an error while answering (an unknown PDK method). */
  kongError?: string;
}

/** ngx.var and what reads it (kong.service.response.get_status) raise this in a timer. */
export const API_DISABLED = "API disabled in the current context";

const LOG_LEVELS = new Set(["debug", "info", "notice", "warn", "err", "crit", "alert", "emerg"]);

/**
 * Kong's answer to one PDK call made from an external plugin's log handler, which runs in a timer after the
 * request (mp_rpc.lua's call_pdk_method and get_step_method with plugin.lua's exposed_api). Calls this
 * emulator does not model are answered as Kong answers a method it cannot find, so a plugin relying on one
 * shows up in the event's errors.
 */
export function answerPdkCall(saved: SavedLogContext, call: PdkCall): PdkAnswer {
  const args = call.Args;
  switch (call.Method) {
    case "kong.log.serialize":
      // Kong cjson-encodes the saved table on every call (plugin.lua's exposed_api): that cost is part of
      // what choosing serialize() costs a Kong node, so the emulator pays it too.
      return { step: "plugin.Step", data: cjsonEncode(saved.serialize) };
    case "kong.nginx.get_ctx":
      return { step: "plugin.Step", data: saved.ngxCtx[String(args[0])] };
    case "kong.ctx.shared.get":
      return { step: "plugin.Step", data: saved.ctxShared[String(args[0])] };
    case "kong.nginx.req_start_time":
      return { step: "plugin.Step", data: saved.reqStartTime };
    case "kong.nginx.get_var":
    case "kong.service.response.get_status":
      return { step: "plugin.StepError", data: API_DISABLED };
    // The timer runs with the saved ngx.ctx as its ngx.ctx, so the router and plugin PDK read from it.
    case "kong.router.get_service":
      return { step: "plugin.StepService", data: saved.ngxCtx.service };
    case "kong.router.get_route":
      return { step: "plugin.StepRoute", data: saved.ngxCtx.route };
    case "kong.client.get_consumer":
      return { step: "plugin.StepConsumer", data: saved.ngxCtx.authenticated_consumer };
    case "kong.client.get_credential":
      return { step: "plugin.StepCredential", data: saved.ngxCtx.authenticated_credential };
    case "kong.plugin.get_id":
      return { step: "plugin.Step", data: saved.pluginId };
    case "kong.response.get_status":
      return { step: "plugin.Step", data: saved.responseStatus };
    case "kong.response.get_source":
      return { step: "plugin.Step", data: responseSource(saved.ngxCtx) };
    case "kong.request.get_header":
      return { step: "plugin.Step", data: firstValue(saved.requestHeaders, args[0]) };
    case "kong.response.get_header":
      return { step: "plugin.Step", data: firstValue(saved.responseHeaders, args[0]) };
    case "kong.request.get_headers":
      return { step: "plugin.StepMultiMap", data: multiMap(saved.requestHeaders) };
    case "kong.response.get_headers":
      return { step: "plugin.StepMultiMap", data: multiMap(saved.responseHeaders) };
  }
  const level = /^kong\.log\.(\w+)$/.exec(call.Method)?.[1];
  if (level !== undefined && LOG_LEVELS.has(level)) {
    // Kong's loggers concatenate their arguments and return nothing.
    return { step: "plugin.Step", pluginLog: { level, message: args.map(luaToString).join("") } };
  }
  return { step: "plugin.Step", kongError: `could not find pdk method: ${call.Method}` };
}

/** kong.response.get_source(ctx). */
function responseSource(ctx: Record<string, unknown>): string {
  if (ctx.KONG_UNEXPECTED) return "error";
  if (ctx.KONG_EXITED) return "exit";
  if (ctx.KONG_PROXIED) return "service";
  return "error";
}

/** The header tables' metatable: any case, and `_` for `-`. */
function headerName(name: unknown): string {
  return String(name).toLowerCase().replace(/_/g, "-");
}

function firstValue(headers: HeaderTable, name: unknown): string | undefined {
  const v = headers[headerName(name)];
  return Array.isArray(v) ? v[0] : v;
}

/** mp_rpc.lua's fix_mmap: every value becomes a list, so the JS side always sees string[]. */
function multiMap(headers: HeaderTable): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(headers)) out[k] = Array.isArray(v) ? v : [v];
  return out;
}

function luaToString(v: unknown): string {
  if (v === null || v === undefined) return "nil";
  return typeof v === "string" ? v : typeof v === "object" ? "table" : JSON.stringify(v);
}
