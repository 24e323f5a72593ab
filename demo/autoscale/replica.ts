#!/usr/bin/env node
/**
 * One replica of the scaled workload, in its own process as a pod would be: the echo upstream, optionally with a
 * bound on the requests it serves at once. Prints {"url": ...} once it listens (it is then Ready); on SIGTERM it
 * answers what it accepted and exits, as a pod does once removed from the endpoints.
 */
import { startEchoUpstream } from "../../devstack/gateway/echo-upstream";

async function main(): Promise<void> {
  const i = process.argv.indexOf("--concurrency");
  const concurrency = i >= 0 ? Number(process.argv[i + 1]) : undefined;
  const upstream = await startEchoUpstream({ concurrency });
  process.once("SIGTERM", () => {
    // A request that never ends must not keep a terminating pod: Kubernetes kills it after its grace period.
    setTimeout(() => process.exit(0), 10_000).unref();
    void upstream.drain().then(() => process.exit(0));
  });
  // The parent holds our stdin: if it dies, even by SIGKILL, the pipe closes and the replica goes with it.
  process.stdin.on("end", () => process.exit(0)).resume();
  process.stdout.write(`${JSON.stringify({ url: upstream.url })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`replica: ${(err as Error).message}\n`);
  process.exit(1);
});
