import { HttpError, quoted } from "./http-util";

export interface RequestTarget {
  /** As sent, never decoded nor normalized: "//" or "/./metrics" is a path no route has. */
  path: string;
  query: URLSearchParams;
}

/** The scheme and authority of an absolute-form target (RFC 9112 3.2.2), which a server must accept. */
const ABSOLUTE_FORM = /^https?:\/\/[^/?#]*/i;
const BAD_ESCAPE = /%(?![0-9a-f]{2})/i;

/**
 * Splits a request target into path and query without resolving it as a URL reference (`new URL("//", base)`
 * reads "//" as an empty host and throws). Throws HttpError 400 naming what is wrong with the target.
 */
export function parseTarget(target: string | undefined): RequestTarget {
  const raw = target ?? "";
  const absolute = ABSOLUTE_FORM.exec(raw);
  let path = raw;
  if (absolute) {
    path = raw.slice(absolute[0].length);
    if (!path.startsWith("/")) path = `/${path}`;
  }
  if (!path.startsWith("/"))
    throw new HttpError(400, "bad_target", `request target ${quoted(raw)} is neither a path nor an http URL`);
  const bad = BAD_ESCAPE.exec(path);
  if (bad)
    throw new HttpError(
      400,
      "bad_target",
      `request target ${quoted(raw)} has a malformed %-escape ${quoted(path.slice(bad.index, bad.index + 3))}`,
    );
  const q = path.indexOf("?");
  if (q < 0) return { path, query: new URLSearchParams() };
  return { path: path.slice(0, q), query: new URLSearchParams(path.slice(q + 1)) };
}
