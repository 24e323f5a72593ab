import { constants } from "node:os";

let stdoutGone = false;

/** A line on stdout, or nothing once its reader is gone (`demo | head`), rather than an EPIPE error. */
export function say(text = ""): void {
  if (!stdoutGone) process.stdout.write(`${text}\n`);
}

/**
 * Routes SIGINT, SIGTERM, a closed stdout (as SIGPIPE would end a shell pipeline's command) and an error thrown
 * outside the program's flow (by an event emitter) to one `interrupt(why, exitCode)`, so that a demo always stops
 * the processes it started before it exits.
 */
export function onInterrupt(program: string, interrupt: (why: string, exitCode: number) => void): void {
  process.on("SIGINT", () => interrupt("SIGINT", 128 + constants.signals.SIGINT));
  process.on("SIGTERM", () => interrupt("SIGTERM", 128 + constants.signals.SIGTERM));
  process.stdout.on("error", () => {
    stdoutGone = true;
    interrupt("stdout closed", 128 + constants.signals.SIGPIPE);
  });
  process.on("uncaughtException", (err) => {
    process.stderr.write(`${program}: ${err.stack ?? String(err)}\n`);
    interrupt("error", 1);
  });
}
