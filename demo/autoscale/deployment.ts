import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";

const START_TIMEOUT_MS = 10_000;

interface Pod {
  child: ChildProcess;
  /** Set once the process listens: it is then Ready and in the balancer. */
  url?: string;
  exited: Promise<void>;
}

export interface Deployment {
  /** The scale's spec.replicas. */
  replicas(): number;
  /** Pods Ready: started and listening, not terminating. */
  ready(): number;
  /** Sets spec.replicas: starts pods, or takes the newest out of the balancer and terminates them. */
  scale(n: number): void;
  /** Kong's round-robin balancer over the Ready pods' addresses. */
  balancer(): string;
  /** Resolves once every wanted pod is Ready; rejects if one fails to start. */
  settled(): Promise<void>;
  /** Why a pod failed to start, if one did: the run cannot go on with fewer pods than the HPA asked for. */
  failure(): Error | undefined;
  stop(): Promise<void>;
}

/**
 * The HPA's scale target: real upstream processes (demo/autoscale/replica.ts), started and terminated as the
 * replica count changes, behind the gateway's balancer. A pod is added to the balancer only once Ready and removed
 * before it is told to stop, as endpoints do.
 */
export function startDeployment(options: { replicas: number; concurrency?: number }): Deployment {
  const pods: Pod[] = [];
  const terminating = new Set<Pod>();
  let spec = 0;
  let next = 0;
  let startError: Error | undefined;
  const starting = new Set<Promise<void>>();
  const args = [
    join(__dirname, "replica.js"),
    ...(options.concurrency !== undefined ? ["--concurrency", String(options.concurrency)] : []),
  ];

  const startPod = () => {
    const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "inherit"] });
    // "close" comes after "error" too (a failed spawn), so `exited` always settles and never rejects.
    const pod: Pod = { child, exited: new Promise<void>((resolve) => child.once("close", () => resolve())) };
    child.once("error", (err) => (startError ??= new Error(`a replica could not start: ${err.message}`)));
    pods.push(pod);
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`a replica did not start within ${START_TIMEOUT_MS} ms`)),
        START_TIMEOUT_MS,
      );
      createInterface({ input: child.stdout }).once("line", (line) => {
        clearTimeout(timer);
        const url = /^\{"url":"(http:\/\/127\.0\.0\.1:\d+)"\}$/.exec(line)?.[1];
        if (url === undefined)
          return reject(new Error(`a replica printed ${JSON.stringify(line)} instead of its address`));
        pod.url = url;
        resolve();
      });
      void pod.exited.then(() => {
        clearTimeout(timer);
        // Told to stop before it listened (a quick scale-down): not a failure.
        if (pod.url === undefined && !terminating.has(pod))
          reject(new Error(`a replica exited before listening (${child.exitCode ?? child.signalCode})`));
        else resolve();
      });
    }).catch((err: Error) => {
      startError ??= err;
    });
    starting.add(ready);
    void ready.finally(() => starting.delete(ready));
  };
  const terminate = (pod: Pod) => {
    terminating.add(pod);
    pod.child.kill("SIGTERM");
    void pod.exited.then(() => terminating.delete(pod));
  };
  const killAll = () => {
    for (const p of [...pods, ...terminating]) p.child.kill("SIGKILL");
  };
  process.once("exit", killAll);

  const deployment: Deployment = {
    replicas: () => spec,
    ready: () => pods.filter((p) => p.url !== undefined).length,
    scale(n) {
      spec = n;
      while (pods.length < n) startPod();
      while (pods.length > n) terminate(pods.pop()!);
    },
    balancer() {
      const up = pods.filter((p) => p.url !== undefined);
      if (up.length === 0) throw new Error("no Ready replica");
      return up[next++ % up.length].url!;
    },
    async settled() {
      while (starting.size > 0) await Promise.all([...starting]);
      if (startError) throw startError;
    },
    failure: () => startError,
    async stop() {
      for (const p of pods.splice(0)) terminate(p);
      const all = Promise.all([...terminating].map((p) => p.exited));
      const timer = setTimeout(killAll, 12_000);
      await all;
      clearTimeout(timer);
      process.off("exit", killAll);
    },
  };
  deployment.scale(options.replicas);
  return deployment;
}
