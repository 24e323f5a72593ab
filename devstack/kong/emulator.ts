import { answerPdkCall, type LogContext, type PdkCall, type SavedLogContext, type StepMethod } from "./pdk-answers";
import type { RpcPoolStats } from "./pool";
import { RpcPipelineError } from "./rpc";
import { DEFAULT_WORKSPACE_ID } from "./serialize";
import { errorText, NginxWorker, type InstanceChange, type PluginConf, type RunningInstance } from "./worker";

export interface KongEmulatorOptions {
  socketPath: string;
  /** The plugin name Kong sends in StartInstance. */
  pluginName: string;
  /** nginx worker processes, each with its own instances and pool; default 2. */
  workers?: number;
  /** Idle connections each worker keeps (lua_socket_pool_size); default 30. */
  poolSize?: number;
  /** Per RPC; Kong's cosocket default is 60 s. */
  callTimeoutMs?: number;
  connectTimeoutMs?: number;
}

/** A plugin entity: its id, its own config fields and its scope. */
export interface PluginEntity {
  id: string;
  config?: Record<string, unknown>;
  routeId?: string | null;
  serviceId?: string | null;
  consumerId?: string | null;
  instanceName?: string | null;
}

export interface EventTrace {
  /** The instance that ran the (last attempt of the) event. */
  instanceId: number | undefined;
  /** The PDK methods the plugin called, in order. */
  pdkCalls: string[];
  /** The step method Kong answered each with. */
  steps: StepMethod[];
  /** What the plugin logged through kong.log.*. */
  pluginLogs: { level: string; message: string }[];
  /** What Kong logged as errors or warnings for this event (RPC errors, unknown PDK methods). */
  errors: string[];
}

/** Kong retries without bound after "no plugin instance"; once is enough to exercise the path and stay bounded. */
const NO_INSTANCE_RETRIES = 1;

/**
 * One Kong node playing Kong's side of the external plugin protocol (kong/runloop/plugin_servers) for one
 * plugin, against a real plugin server's socket. Only the log phase is emulated, as Kong runs it: in a timer,
 * with the request's saved context. `log()` may run concurrently: each RPC takes its own pooled connection.
 */
export class KongEmulator {
  /** Every StartInstance and CloseInstance made, in order. */
  readonly instanceChanges: InstanceChange[] = [];
  private readonly workers: NginxWorker[];
  private readonly entities = new Map<string, PluginEntity>();
  private readonly confs = new Map<string, PluginConf>();
  private seq = 0;

  constructor(private readonly options: KongEmulatorOptions) {
    const poolOptions = {
      socketPath: options.socketPath,
      maxIdle: options.poolSize,
      callTimeoutMs: options.callTimeoutMs,
      connectTimeoutMs: options.connectTimeoutMs,
    };
    this.workers = Array.from(
      { length: options.workers ?? 2 },
      (_, i) => new NginxWorker(i, options.pluginName, poolOptions, (c) => this.instanceChanges.push(c)),
    );
  }

  /**
   * Adds or updates a plugin entity. Like Kong rebuilding its plugins iterator after any change, every
   * plugin's conf gets a new __seq__, so each worker restarts its instances on their next event.
   */
  configurePlugin(entity: PluginEntity): PluginConf {
    return this.configurePlugins([entity])[0];
  }

  /** Adds or updates many entities with one rebuild, as Kong does for a whole declarative configuration. */
  configurePlugins(entities: PluginEntity[]): PluginConf[] {
    for (const e of entities) this.entities.set(e.id, e);
    for (const e of this.entities.values()) this.confs.set(e.id, this.confFor(e));
    return entities.map((e) => this.confs.get(e.id) as PluginConf);
  }

  /**
   * One log event of plugin `pluginId` on worker `workerIndex`, for the request saved in `ctx`. Resolves with
   * what happened (failures Kong only logs are in `errors`); rejects with StartInstanceError when the instance
   * cannot be started, since Kong raises there and the event is lost.
   */
  async log(workerIndex: number, pluginId: string, ctx: LogContext): Promise<EventTrace> {
    const worker = this.worker(workerIndex);
    const conf = this.confs.get(pluginId);
    if (!conf) throw new Error(`plugin ${pluginId} is not configured`);
    const saved: SavedLogContext = { ...ctx, pluginId };
    const trace: EventTrace = { instanceId: undefined, pdkCalls: [], steps: [], pluginLogs: [], errors: [] };
    for (let attempt = 0; ; attempt++) {
      trace.instanceId = await worker.getInstanceId(conf);
      const err = await this.runEvent(worker, trace.instanceId, saved, trace);
      if (err === undefined) return trace;
      trace.errors.push(err);
      if (!err.toLowerCase().includes("no plugin instance") || attempt >= NO_INSTANCE_RETRIES) return trace;
      // reset_instance also posts a worker event, so every worker forgets the plugin's instances.
      for (const w of this.workers) w.resetInstances();
    }
  }

  runningInstance(workerIndex: number, pluginId: string): RunningInstance | undefined {
    return this.worker(workerIndex).instance(pluginId);
  }

  poolStats(workerIndex: number): RpcPoolStats {
    return this.worker(workerIndex).pool.stats();
  }

  /** Closes every connection; events in flight end with an error. */
  close(): void {
    for (const w of this.workers) w.pool.close();
  }

  /** mp_rpc.lua's bridge_loop: HandleEvent, then answer each PDK call until "ret". Returns Kong's error, if any. */
  private async runEvent(
    worker: NginxWorker,
    instanceId: number,
    saved: SavedLogContext,
    trace: EventTrace,
  ): Promise<string | undefined> {
    try {
      let reply = eventReply(
        await worker.pool.call("plugin.HandleEvent", { InstanceId: instanceId, EventName: "log" }),
      );
      const eventId = reply.EventId;
      while (reply.Data !== "ret") {
        const call = pdkCall(reply.Data);
        trace.pdkCalls.push(call.Method);
        const answer = answerPdkCall(saved, call);
        if (answer.kongError !== undefined) trace.errors.push(answer.kongError);
        if (answer.pluginLog) trace.pluginLogs.push(answer.pluginLog);
        trace.steps.push(answer.step);
        reply = eventReply(await worker.pool.call(answer.step, { EventId: eventId, Data: answer.data }));
      }
      return undefined;
    } catch (err) {
      // Harness bugs and malformed replies must fail the caller, not hide among Kong's logged errors.
      if (err instanceof RpcPipelineError || err instanceof ProtocolError) throw err;
      return errorText(err);
    }
  }

  private confFor(e: PluginEntity): PluginConf {
    const routeId = e.routeId ?? null;
    const serviceId = e.serviceId ?? null;
    const consumerId = e.consumerId ?? null;
    return {
      ...e.config,
      route_id: routeId,
      service_id: serviceId,
      consumer_id: consumerId,
      plugin_instance_name: e.instanceName ?? null,
      __plugin_id: e.id,
      __ws_id: DEFAULT_WORKSPACE_ID,
      // kong.db.plugins:cache_key(name, route, service, consumer, nil, ws_id)
      __key__: `plugins:${this.options.pluginName}:${routeId ?? ""}:${serviceId ?? ""}:${consumerId ?? ""}::${DEFAULT_WORKSPACE_ID}`,
      __seq__: ++this.seq,
    };
  }

  private worker(index: number): NginxWorker {
    const w = this.workers[index];
    if (!w) throw new Error(`no worker ${index} (this node has ${this.workers.length})`);
    return w;
  }
}

/** The plugin server answered something Kong's Lua would choke on. */
export class ProtocolError extends Error {}

function eventReply(reply: unknown): { EventId: number; Data: unknown } {
  const r = reply as { EventId?: unknown; Data?: unknown } | null;
  if (typeof r?.EventId !== "number") throw new ProtocolError(`event reply without EventId: ${JSON.stringify(reply)}`);
  return { EventId: r.EventId, Data: r.Data };
}

function pdkCall(data: unknown): PdkCall {
  const d = data as { Method?: unknown; Args?: unknown } | null;
  if (typeof d?.Method !== "string")
    throw new ProtocolError(`event step is neither "ret" nor a PDK call: ${JSON.stringify(data)}`);
  return { Method: d.Method, Args: Array.isArray(d.Args) ? d.Args : [] };
}
