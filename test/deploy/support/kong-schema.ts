/**
 * A plugin configuration checked the way Kong checks it against the schema the plugin server reports (Kong's
 * schema language: a list of single-key records `{ field: { type, required, default, between, one_of, len_min,
 * elements } }`): unknown fields are refused, defaults fill what is missing, then types and bounds. This is what
 * decides whether Kong accepts a declarative file or a KongPlugin before the plugin server ever sees it.
 */
export type KongField = {
  type: string;
  required?: boolean;
  default?: unknown;
  between?: [number, number];
  one_of?: unknown[];
  len_min?: number;
  len_max?: number;
  elements?: KongField;
  description?: string;
};

export type KongFieldList = Record<string, KongField>[];

const SUPPORTED = new Set([
  "type",
  "required",
  "default",
  "between",
  "one_of",
  "len_min",
  "len_max",
  "elements",
  "description",
]);

function checkValue(name: string, f: KongField, v: unknown): string[] {
  for (const k of Object.keys(f))
    if (!SUPPORTED.has(k)) return [`${name}: schema attribute "${k}" is not understood by this checker`];
  const errs: string[] = [];
  switch (f.type) {
    case "string":
      if (typeof v !== "string") return [`${name}: expected a string`];
      if (f.len_min !== undefined && v.length < f.len_min) errs.push(`${name}: length must be at least ${f.len_min}`);
      if (f.len_max !== undefined && v.length > f.len_max) errs.push(`${name}: length must be at most ${f.len_max}`);
      break;
    case "number":
      if (typeof v !== "number" || !Number.isFinite(v)) return [`${name}: expected a number`];
      break;
    case "integer":
      if (typeof v !== "number" || !Number.isInteger(v)) return [`${name}: expected an integer`];
      break;
    case "boolean":
      if (typeof v !== "boolean") return [`${name}: expected a boolean`];
      break;
    case "array":
    case "set":
      if (!Array.isArray(v)) return [`${name}: expected an array`];
      if (f.len_min !== undefined && v.length < f.len_min) errs.push(`${name}: length must be at least ${f.len_min}`);
      if (f.len_max !== undefined && v.length > f.len_max) errs.push(`${name}: length must be at most ${f.len_max}`);
      if (f.elements) v.forEach((e, i) => errs.push(...checkValue(`${name}[${i}]`, f.elements!, e)));
      return errs;
    default:
      return [`${name}: type "${f.type}" is not understood by this checker`];
  }
  if (f.between && typeof v === "number" && (v < f.between[0] || v > f.between[1])) {
    errs.push(`${name}: value should be between ${f.between[0]} and ${f.between[1]}`);
  }
  if (f.one_of && !f.one_of.includes(v)) errs.push(`${name}: expected one of: ${f.one_of.join(", ")}`);
  return errs;
}

/** Returns Kong's verdict: the errors, and the configuration with defaults as Kong would store it. */
export function checkKongConfig(
  fields: KongFieldList,
  config: Record<string, unknown>,
): { errors: string[]; config: Record<string, unknown> } {
  const known = new Map<string, KongField>();
  for (const entry of fields) {
    const keys = Object.keys(entry);
    if (keys.length !== 1) return { errors: [`schema entry with ${keys.length} keys`], config };
    known.set(keys[0], entry[keys[0]]);
  }
  const errors: string[] = [];
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(config)) if (!known.has(k)) errors.push(`${k}: unknown field`);
  for (const [name, f] of known) {
    let v = config[name];
    if (v === undefined || v === null) v = f.default;
    if (v === undefined || v === null) {
      if (f.required) errors.push(`${name}: required field missing`);
      continue;
    }
    errors.push(...checkValue(name, f, v));
    out[name] = v;
  }
  return { errors, config: out };
}
