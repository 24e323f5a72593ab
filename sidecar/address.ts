import { isIP } from "node:net";

/** A listening address: TCP host and port, or a Unix socket path. */
export type ListenAddress = { kind: "tcp"; host: string; port: number } | { kind: "unix"; path: string };

export class AddressError extends Error {}

/** Parses HOST:PORT, [IPv6]:PORT or unix:/abs/path. */
export function parseAddress(text: string): ListenAddress {
  if (text.startsWith("unix:")) {
    const path = text.slice(5);
    if (!path.startsWith("/"))
      throw new AddressError(`"${text}": a Unix socket path must be absolute (unix:/path/to.sock)`);
    return { kind: "unix", path };
  }
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  if (!m) throw new AddressError(`"${text}": expected HOST:PORT, [IPv6]:PORT or unix:/path`);
  const host = m[1] ?? m[2] ?? "";
  const port = Number(m[3]);
  if (port > 65535) throw new AddressError(`"${text}": port ${port} is out of range`);
  if (host === "") throw new AddressError(`"${text}": give a host (0.0.0.0 to listen on every interface)`);
  if (m[1] !== undefined && isIP(host) !== 6) throw new AddressError(`"${text}": "${host}" is not an IPv6 address`);
  return { kind: "tcp", host, port };
}

export function isLoopback(a: ListenAddress): boolean {
  if (a.kind === "unix") return true;
  return a.host === "localhost" || a.host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a.host);
}

export function formatAddress(a: ListenAddress): string {
  if (a.kind === "unix") return `unix:${a.path}`;
  return isIP(a.host) === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
