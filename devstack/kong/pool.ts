import { RpcConnection, RpcServerError } from "./rpc";

export interface RpcPoolOptions {
  socketPath: string;
  /** Idle connections kept for reuse, like nginx's lua_socket_pool_size (default 30). */
  maxIdle?: number;
  connectTimeoutMs?: number;
  /** Kong's cosocket default is 60 s. */
  callTimeoutMs?: number;
}

export interface RpcPoolStats {
  /** Connections opened so far. */
  opened: number;
  idle: number;
  inUse: number;
  /** Most connections ever in use at once: the concurrency the server saw from this pool. */
  peakInUse: number;
}

/**
 * One nginx worker's cosocket keepalive pool for one socket, as Kong's mp_rpc.lua uses it: every call takes
 * an idle connection or opens one, and gives it back (setkeepalive) once its answer is read. Like nginx, the
 * bound is on idle connections: concurrent callers each get their own connection, and those beyond the bound
 * are closed when given back.
 */
export class RpcPool {
  private readonly idle: RpcConnection[] = [];
  private readonly inUse = new Set<RpcConnection>();
  private readonly maxIdle: number;
  private readonly connectTimeoutMs: number;
  private readonly callTimeoutMs: number;
  private opened = 0;
  private peakInUse = 0;
  private closed = false;

  constructor(readonly options: RpcPoolOptions) {
    this.maxIdle = options.maxIdle ?? 30;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
    this.callTimeoutMs = options.callTimeoutMs ?? 60_000;
  }

  async call(method: string, arg: unknown): Promise<unknown> {
    const conn = await this.take();
    try {
      const result = await conn.call(method, arg, this.callTimeoutMs);
      this.giveBack(conn);
      return result;
    } catch (err) {
      // An error answer leaves the connection in a known state (Kong keeps it too); anything else does not.
      if (err instanceof RpcServerError) this.giveBack(conn);
      else this.drop(conn);
      throw err;
    }
  }

  stats(): RpcPoolStats {
    return { opened: this.opened, idle: this.idle.length, inUse: this.inUse.size, peakInUse: this.peakInUse };
  }

  /** Closes every connection, idle or in use (calls in flight reject). */
  close(): void {
    this.closed = true;
    for (const conn of [...this.idle, ...this.inUse]) conn.close();
    this.idle.length = 0;
    this.inUse.clear();
  }

  private async take(): Promise<RpcConnection> {
    if (this.closed) throw new Error(`pool for ${this.options.socketPath} is closed`);
    let conn = this.idle.pop();
    // The server may have closed an idle connection (for instance when it restarted).
    while (conn?.closed) conn = this.idle.pop();
    if (!conn) {
      conn = await RpcConnection.connect(this.options.socketPath, this.connectTimeoutMs);
      this.opened++;
      if (this.closed) {
        conn.close();
        throw new Error(`pool for ${this.options.socketPath} is closed`);
      }
    }
    this.inUse.add(conn);
    if (this.inUse.size > this.peakInUse) this.peakInUse = this.inUse.size;
    return conn;
  }

  private giveBack(conn: RpcConnection): void {
    this.inUse.delete(conn);
    if (!this.closed && !conn.closed && this.idle.length < this.maxIdle) this.idle.push(conn);
    else conn.close();
  }

  private drop(conn: RpcConnection): void {
    this.inUse.delete(conn);
    conn.close();
  }
}
