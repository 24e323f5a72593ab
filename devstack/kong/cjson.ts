/**
 * JSON as Kong's lua-cjson writes it (Kong's StartInstance Config and kong.log.serialize() in the log timer):
 * forward slashes escaped as `\/`, and non-integers printed with 14 significant digits (`%.14g`). The
 * escaping makes URL-heavy payloads a little longer, which matters when measuring the cost of parsing them.
 */
export function cjsonEncode(value: unknown): string {
  return JSON.stringify(value, roundLikeCjson).replace(/\//g, "\\/");
}

function roundLikeCjson(_key: string, v: unknown): unknown {
  return typeof v === "number" && !Number.isInteger(v) && Number.isFinite(v) ? Number(v.toPrecision(14)) : v;
}
