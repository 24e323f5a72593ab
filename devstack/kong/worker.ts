import { cjsonEncode } from "./cjson";
import { RpcPool, type RpcPoolOptions } from "./pool";

/** The conf table Kong passes to a plugin's handler; StartInstance sends it cjson-encoded. */
export type PluginConf = Record<string, unknown> & {
  __plugin_id: string;
  __key__: string;
  __seq__: number;
};

/** A plugin instance a worker has started and uses for its events. */
export interface RunningInstance {
  id: number;
  seq: number;
  /** The Config the server echoed back from StartInstance. */
  config: unknown;
}

/** A StartInstance or CloseInstance a worker made, in order, for tests to assert the instance lifecycle. */
export interface InstanceChange {
  worker: number;
  pluginId: string;
  kind: "start" | "close";
  id: number;
  /** CloseInstance's error, which Kong ignores ("maybe other thread closed it first"). */
  error?: string;
}

/** StartInstance failed: Kong logs "starting instance: <err>" and raises, which aborts the event. */
export class StartInstanceError extends Error {
  constructor(readonly serverMessage: string) {
    super(`starting instance: ${serverMessage}`);
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface Slot {
  /** Undefined while some event of this worker is starting the instance. */
  id: number | undefined;
  seq: number;
  pluginId: string;
  config: unknown;
  /** Settles when the start in progress does, whatever its outcome. */
  starting: Promise<void>;
  /** Kong sets instance_info.plugin_name only after a successful start, and resets match on it. */
  everStarted: boolean;
}

/**
 * One nginx worker's side of external plugins (kong/runloop/plugin_servers/plugin.lua): its own table of
 * running instances keyed by plugin id, and its own cosocket pool. Several workers therefore start several
 * instances of the same plugin configuration in one plugin server.
 */
export class NginxWorker {
  readonly pool: RpcPool;
  private readonly running = new Map<string, Slot>();

  constructor(
    readonly index: number,
    private readonly pluginName: string,
    poolOptions: RpcPoolOptions,
    private readonly onChange: (change: InstanceChange) => void,
  ) {
    this.pool = new RpcPool(poolOptions);
  }

  /** plugin.lua's get_instance_id: reuse the instance for this __seq__, or start one and close the old one. */
  async getInstanceId(conf: PluginConf): Promise<number> {
    const key = conf.__plugin_id;
    let slot = this.running.get(key);
    // Another event of this worker is starting it. Kong polls every 0.1 s; awaiting the start is the same, sooner.
    while (slot && slot.id === undefined) {
      await slot.starting;
      slot = this.running.get(key);
    }
    if (slot && slot.id !== undefined && slot.seq === conf.__seq__ && slot.pluginId === key) return slot.id;

    const oldId = slot?.id;
    const started = this.pool.call("plugin.StartInstance", { Name: this.pluginName, Config: cjsonEncode(conf) });
    const starting = started.then(
      () => undefined,
      () => undefined,
    );
    if (slot) {
      slot.id = undefined;
      slot.starting = starting;
    } else {
      slot = { id: undefined, seq: conf.__seq__, pluginId: key, config: undefined, starting, everStarted: false };
      this.running.set(key, slot);
    }

    let reply: { Id: number; Config: unknown };
    try {
      reply = startReply(await started);
    } catch (err) {
      // Kong removes its claim so that another event may succeed, and raises.
      this.running.delete(key);
      throw new StartInstanceError(errorText(err));
    }
    slot.id = reply.Id;
    slot.seq = conf.__seq__;
    slot.pluginId = key;
    slot.config = reply.Config;
    slot.everStarted = true;
    this.onChange({ worker: this.index, pluginId: key, kind: "start", id: reply.Id });

    if (oldId !== undefined) {
      try {
        await this.pool.call("plugin.CloseInstance", oldId);
        this.onChange({ worker: this.index, pluginId: key, kind: "close", id: oldId });
      } catch (err) {
        this.onChange({ worker: this.index, pluginId: key, kind: "close", id: oldId, error: errorText(err) });
      }
    }
    return reply.Id;
  }

  /**
   * reset_instances_for_plugin, after a "no plugin instance" error: forget every started instance (they are
   * not closed; the server drops instances unused for 60 s by itself). Claims still starting are kept.
   */
  resetInstances(): void {
    for (const [key, slot] of this.running) if (slot.everStarted) this.running.delete(key);
  }

  instance(pluginId: string): RunningInstance | undefined {
    const slot = this.running.get(pluginId);
    return slot?.id === undefined ? undefined : { id: slot.id, seq: slot.seq, config: slot.config };
  }
}

function startReply(reply: unknown): { Id: number; Config: unknown } {
  const r = reply as { Id?: unknown; Config?: unknown } | null;
  if (typeof r?.Id !== "number") throw new Error(`StartInstance answered ${JSON.stringify(reply)}`);
  return { Id: r.Id, Config: r.Config };
}
