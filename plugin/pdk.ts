/**
 * The part of Kong's PDK this plugin calls, typed as Kong really answers in the log timer (kong-pdk's
 * bundled typings are wrong: serialize() is typed Promise<null>, but Kong returns a JSON string).
 */
export interface KongServiceEntity {
  id?: unknown;
  name?: unknown;
  host?: unknown;
  tags?: unknown;
}

export interface LogPdk {
  nginx: { getCtx(key: string): Promise<unknown> };
  router: { getService(): Promise<KongServiceEntity | null | undefined> };
  log: { serialize(): Promise<string> };
}

/** kong.log.serialize()'s fields that this plugin reads. */
export interface SerializedLog {
  latencies?: { proxy?: unknown; request?: unknown; kong?: unknown };
  service?: KongServiceEntity | null;
}
