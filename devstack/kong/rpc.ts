import * as net from "node:net";
import { Decoder, Encoder } from "@msgpack/msgpack";

/** The server answered the request with an error (the third element of the response); the connection is fine. */
export class RpcServerError extends Error {}

/** Connecting, writing, reading or decoding failed, or no answer came in time; the connection is gone. */
export class RpcTransportError extends Error {}

/** A second request was started while one was in flight: Kong never does that, and the JS server crashes on it. */
export class RpcPipelineError extends Error {}

interface Pending {
  msgid: number;
  method: string;
  resolve(result: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

const REQUEST = 0;
const RESPONSE = 1;
const NOTIFICATION = 2;

/**
 * One msgpack-rpc connection to a plugin server's Unix socket, used the way Kong's mp_rpc.lua uses a cosocket:
 * write `[0, msgid, method, [arg]]`, then read objects until the matching `[1, msgid, err, result]`.
 */
export class RpcConnection {
  // Lua tables cannot hold nil: a field Kong leaves nil is absent from the map, never an explicit msgpack nil.
  private readonly encoder = new Encoder(undefined, undefined, undefined, undefined, undefined, undefined, true);
  private pending: Pending | undefined;
  private nextMsgid = 0;
  private closedReason: string | undefined;

  private constructor(
    private readonly socket: net.Socket,
    readonly socketPath: string,
  ) {
    void this.readLoop();
  }

  static connect(socketPath: string, timeoutMs: number): Promise<RpcConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(socketPath);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new RpcTransportError(`connect ${socketPath}: no connection within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once("error", (err) => {
        clearTimeout(timer);
        reject(new RpcTransportError(`connect ${socketPath}: ${err.message}`));
      });
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.removeAllListeners("error");
        // Errors surface through the read loop; this listener only keeps them from being unhandled.
        socket.on("error", () => undefined);
        resolve(new RpcConnection(socket, socketPath));
      });
    });
  }

  get busy(): boolean {
    return this.pending !== undefined;
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  /**
   * Sends one request. Throws (synchronously) when a request is already in flight or the connection is closed:
   * those are bugs in the caller, not conditions to recover from.
   */
  call(method: string, arg: unknown, timeoutMs: number): Promise<unknown> {
    if (this.pending) {
      throw new RpcPipelineError(
        `${method} while ${this.pending.method} (#${this.pending.msgid}) is in flight on ${this.socketPath}`,
      );
    }
    if (this.closedReason !== undefined) {
      throw new RpcTransportError(`${method} on a closed connection (${this.closedReason})`);
    }
    const msgid = ++this.nextMsgid;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new RpcTransportError(`${method} (#${msgid}): no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending = { msgid, method, resolve, reject, timer };
      this.socket.write(this.encoder.encode([REQUEST, msgid, method, [arg]]));
    });
  }

  close(): void {
    this.fail(new RpcTransportError("connection closed by the client"));
  }

  private async readLoop(): Promise<void> {
    try {
      for await (const message of new Decoder().decodeStream(this.socket)) this.onMessage(message);
      this.fail(new RpcTransportError("connection closed by the server"));
    } catch (err) {
      this.fail(new RpcTransportError(`read: ${(err as Error).message}`));
    }
  }

  private onMessage(message: unknown): void {
    if (!Array.isArray(message)) {
      this.fail(new RpcTransportError(`not a msgpack-rpc message: ${JSON.stringify(message)}`));
      return;
    }
    // Kong reads and drops notifications other than serverPid, which no JS server sends.
    if (message[0] === NOTIFICATION) return;
    const pending = this.pending;
    if (message[0] !== RESPONSE || !pending || message[1] !== pending.msgid) {
      this.fail(
        new RpcTransportError(`unexpected message ${JSON.stringify(message)} (waiting for #${pending?.msgid})`),
      );
      return;
    }
    clearTimeout(pending.timer);
    this.pending = undefined;
    const [, , err, result] = message as [number, number, unknown, unknown];
    if (err !== null && err !== undefined)
      pending.reject(new RpcServerError(typeof err === "string" ? err : JSON.stringify(err)));
    else pending.resolve(result);
  }

  private fail(err: RpcTransportError): void {
    if (this.closedReason === undefined) {
      this.closedReason = err.message;
      this.socket.destroy();
    }
    const pending = this.pending;
    if (pending) {
      clearTimeout(pending.timer);
      this.pending = undefined;
      pending.reject(err);
    }
  }
}
