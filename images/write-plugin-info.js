#!/usr/bin/env node
"use strict";
/*
 * write-plugin-info.js: writes the plugin info Kong's pluginserver_<name>_query_cmd returns, as a file, before
 * Kong starts.
 *
 *   node write-plugin-info.js --out FILE [--expect NAME] [--timeout-ms MS] -- COMMAND [ARGS...]
 *
 * Runs COMMAND (no shell), normally `kong-js-pluginserver --plugins-directory DIR --dump-all-plugins`, and
 * checks that its stdout is what Kong parses at start: a JSON array of plugin infos, each with a Name, a
 * Priority, a Version and a Schema. With --expect, the first entry must be that plugin (Kong >= 3.9 takes
 * only the first plugin a server reports). The JSON is re-serialised, so stray whitespace never reaches Kong,
 * and written atomically (temporary file in the same directory, fsync, rename) with mode 0644, so that Kong,
 * whatever its user, reads either the whole file or none.
 *
 * Exists because the plugin-server image is distroless (no shell for `cmd > file`) and because a dump
 * polluted by a load warning (kong-js-pluginserver prints those on stdout) must stop the pod at once,
 * not break Kong's start later. Plain Node.js, no dependencies. Exit status: 0 written, 1 failed, 2 usage.
 */
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const MAX_STDOUT = 16 * 1024 * 1024;

function usage(message) {
  process.stderr.write(
    `write-plugin-info: ${message}\n` +
      "usage: write-plugin-info.js --out FILE [--expect NAME] [--timeout-ms MS] -- COMMAND [ARGS...]\n",
  );
  process.exit(2);
}

function fail(message) {
  process.stderr.write(`write-plugin-info: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { out: undefined, expect: undefined, timeoutMs: 60000, command: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      opts.command = argv.slice(i + 1);
      break;
    }
    const value = argv[i + 1];
    if (arg === "--out" || arg === "--expect" || arg === "--timeout-ms") {
      if (value === undefined || value === "--") usage(`${arg} needs a value`);
      i++;
      if (arg === "--out") opts.out = value;
      else if (arg === "--expect") opts.expect = value;
      else {
        if (!/^[1-9][0-9]*$/.test(value)) usage(`--timeout-ms "${value}" is not a positive integer`);
        opts.timeoutMs = Number(value);
      }
    } else {
      usage(`unknown argument "${arg}"`);
    }
  }
  if (!opts.out) usage("--out is required");
  if (!path.isAbsolute(opts.out)) usage(`--out "${opts.out}" must be an absolute path`);
  if (opts.command.length === 0) usage("no command after --");
  return opts;
}

function run(command, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn(command[0], command.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
    const chunks = [];
    let size = 0;
    let overflow = false;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.stdout.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_STDOUT) {
        overflow = true;
        child.kill("SIGKILL");
      } else {
        chunks.push(chunk);
      }
    });
    child.on("error", (err) => {
      clearTimeout(timer);
      resolve({ error: err });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, overflow, stdout: Buffer.concat(chunks).toString("utf8") });
    });
  });
}

function excerpt(text) {
  const clean = text.replace(/\x1b\[[0-9;]*m/g, "");
  return clean.length > 600 ? `${clean.slice(0, 600)}...` : clean;
}

/** The checks Kong's plugin_servers code relies on: an array of {Name, Priority, Version, Schema, ...}. */
function checkInfo(infos, expect) {
  if (!Array.isArray(infos)) return "the output is JSON but not an array of plugin infos";
  if (infos.length === 0)
    return "the plugin server reports no plugin: did the plugin fail to load (see its warnings above)?";
  for (const [i, info] of infos.entries()) {
    if (typeof info !== "object" || info === null || Array.isArray(info)) return `entry ${i} is not an object`;
    if (typeof info.Name !== "string" || info.Name === "") return `entry ${i} has no Name`;
    if (typeof info.Priority !== "number") return `entry ${i} (${info.Name}) has no numeric Priority`;
    if (typeof info.Version !== "string") return `entry ${i} (${info.Name}) has no Version string`;
    if (typeof info.Schema !== "object" || info.Schema === null || !Array.isArray(info.Schema.fields)) {
      return `entry ${i} (${info.Name}) has no Schema with fields`;
    }
  }
  if (expect !== undefined && infos[0].Name !== expect) {
    return `the first plugin reported is "${infos[0].Name}", not "${expect}" (Kong >= 3.9 uses only the first)`;
  }
  return undefined;
}

function writeAtomically(file, text) {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  let fd;
  try {
    fd = fs.openSync(tmp, "w", 0o644);
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.chmodSync(tmp, 0o644); // whatever the umask: Kong may run as another user
    fs.renameSync(tmp, file);
  } catch (err) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  try {
    const dfd = fs.openSync(dir, "r");
    fs.fsyncSync(dfd);
    fs.closeSync(dfd);
  } catch {
    // Directory fsync is best effort (not every filesystem allows it).
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const res = await run(opts.command, opts.timeoutMs);
  const shown = opts.command.join(" ");
  if (res.error) fail(`cannot run ${shown}: ${res.error.message}`);
  if (res.timedOut) fail(`${shown} did not finish within ${opts.timeoutMs} ms`);
  if (res.overflow) fail(`${shown} printed more than ${MAX_STDOUT} bytes`);
  if (res.code !== 0) fail(`${shown} exited with ${res.signal ? `signal ${res.signal}` : `status ${res.code}`}`);
  let infos;
  try {
    infos = JSON.parse(res.stdout);
  } catch (err) {
    fail(
      `${shown} did not print clean JSON (${err.message}); Kong would refuse to start with it. ` +
        `Its output begins:\n${excerpt(res.stdout)}`,
    );
  }
  const problem = checkInfo(infos, opts.expect);
  if (problem) fail(`${shown}: ${problem}`);
  try {
    writeAtomically(opts.out, `${JSON.stringify(infos)}\n`);
  } catch (err) {
    fail(`cannot write ${opts.out}: ${err.message}`);
  }
  const names = infos.map((p) => `${p.Name} ${p.Version} (priority ${p.Priority})`).join(", ");
  process.stderr.write(`write-plugin-info: wrote ${opts.out}: ${names}\n`);
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));
