import { MultiBar, Presets, type SingleBar } from "cli-progress";

const multibar = new MultiBar(
  {
    format: " {bar} {percentage}% | {value}/{total} | {task}",
    hideCursor: true,
    clearOnComplete: false,
    noTTYOutput: true,
    notTTYSchedule: 5000,
  },
  Presets.shades_classic,
);

/** A progress bar on stderr for one long task; the results themselves go to RESULTS.md. */
export function progress(task: string, total: number): SingleBar {
  return multibar.create(total, 0, { task });
}

export function stopProgress(): void {
  multibar.stop();
}
