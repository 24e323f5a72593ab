import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../kong/pluginserver";
import { childPids } from "../process/proc-stats";
import { waitFor } from "../process/wait";

/** Where this directory's Lua modules and nginx.conf templates are (they are not compiled, so read from the source tree). */
export const NGINX_DIR = join(REPO_ROOT, "devstack", "nginx");

/** The Debian packages the gateway needs: their line in the list the test setup installs. */
function gatewayPackages(): string {
  const list = readFileSync(join(REPO_ROOT, "devstack", "setup", "debian-packages.txt"), "utf8");
  return list.split("\n").find((l) => /^nginx\s/.test(l)) ?? "nginx libnginx-mod-http-lua";
}

const NEEDED_FILES = [
  "/usr/lib/nginx/modules/ndk_http_module.so",
  "/usr/lib/nginx/modules/ngx_http_lua_module.so",
  "/usr/share/lua/5.1/resty/core.lua",
  "/usr/share/lua/5.1/MessagePack.lua",
];

/** The nginx binary, when nginx and everything the gateway's Lua needs are installed. */
export function findNginx(): string | undefined {
  const bin = ["/usr/sbin/nginx", "/usr/bin/nginx"].find((b) => existsSync(b));
  return bin && NEEDED_FILES.every((f) => existsSync(f)) ? bin : undefined;
}

/** Why the nginx gateway cannot run here, with the command that fixes it; undefined when it can. */
export function nginxMissing(): string | undefined {
  if (findNginx()) return undefined;
  return `nginx with its Lua module is not installed: apt-get install -y --no-install-recommends ${gatewayPackages()}`;
}

/** `template` with every ${NAME} replaced; a placeholder without a value is an error, not an empty string. */
export function renderTemplate(template: string, vars: Record<string, string>): string {
  return template.replace(/\$\{([A-Z_]+)\}/g, (_, name: string) => {
    const v = vars[name];
    if (v === undefined) throw new Error(`nginx template: no value for \${${name}}`);
    return v;
  });
}

export interface NginxProcess {
  /** The master process. */
  pid: number;
  prefix: string;
  /** The worker processes, which do the proxying and run the Lua. */
  workerPids(): number[];
  /** nginx's error log so far. */
  errorLog(): string;
  /** SIGTERM (nginx's fast shutdown), SIGKILL after 5 s; removes the prefix. Idempotent. */
  stop(): Promise<void>;
}

export interface StartNginxOptions {
  /** File name of a template in devstack/nginx/. */
  template: string;
  /** Values of its placeholders; PREFIX, LUA_DIR and USER_DIRECTIVE are filled here. */
  vars: Record<string, string>;
  /** Files to write in the prefix before starting, by name. */
  files?: Record<string, string>;
  /** TCP ports on 127.0.0.1 that must accept connections before the start counts as done. */
  ports: number[];
  timeoutMs?: number;
}

// nginx processes still running when this process exits (a crash, mocha --exit) are killed, not orphaned.
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/** Starts nginx in the foreground with its own prefix (a temporary directory), on loopback ports only. */
export async function startNginx(options: StartNginxOptions): Promise<NginxProcess> {
  const bin = findNginx();
  if (!bin) throw new Error(nginxMissing());
  const prefix = mkdtempSync(join(tmpdir(), "kong-like-"));
  mkdirSync(join(prefix, "logs"));
  for (const [name, text] of Object.entries(options.files ?? {})) writeFileSync(join(prefix, name), text);
  const conf = renderTemplate(readFileSync(join(NGINX_DIR, options.template), "utf8"), {
    ...options.vars,
    PREFIX: prefix,
    LUA_DIR: join(NGINX_DIR, "lua"),
    // Workers run as nobody when the master is root, and could not reach a socket root created.
    USER_DIRECTIVE: process.getuid?.() === 0 ? "user root;" : "",
  });
  const confPath = join(prefix, "nginx.conf");
  writeFileSync(confPath, conf);
  const errorLogPath = join(prefix, "logs", "error.log");
  const child = spawn(bin, ["-p", prefix, "-c", confPath, "-e", errorLogPath], { stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  let output = "";
  child.stdout.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr.on("data", (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  void exited.then(() => live.delete(child));
  const errorLog = () => (existsSync(errorLogPath) ? readFileSync(errorLogPath, "utf8") : "");

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(prefix, { recursive: true, force: true });
    })());

  try {
    // An nginx that cannot start (a port taken, a bad directive) exits at once: fail with its own words then.
    const state = await waitFor(
      `nginx (${options.template}) to listen on ${options.ports.join(", ")}`,
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) return "exited";
        return (await Promise.all(options.ports.map(canConnect))).every(Boolean) ? "listening" : undefined;
      },
      options.timeoutMs ?? 10_000,
      25,
    );
    if (state === "exited") throw new Error(`nginx (${options.template}) exited before listening`);
  } catch (err) {
    const message = `${(err as Error).message}:\n${output}${errorLog().slice(-2_000)}`;
    await stop();
    throw new Error(message, { cause: err });
  }
  return { pid: child.pid!, prefix, workerPids: () => childPids(child.pid!), errorLog, stop };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
