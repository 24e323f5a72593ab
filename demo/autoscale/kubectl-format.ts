import type { HpaEvent, HpaSpec } from "./hpa";

/** kubectl's ages (k8s.io/apimachinery/pkg/util/duration HumanDuration), for the precision a few minutes need. */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  return `${Math.floor(m / 60)}h`;
}

const COLUMNS = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"];

function table(rows: string[][]): string[] {
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] + 3)))
      .join("")
      .trimEnd(),
  );
}

/** One line of `kubectl get events -w` for an event that just happened (its age is 0s). */
export function eventLine(e: HpaEvent, hpaName: string): string {
  return [e.type.padEnd(9), e.reason.padEnd(31), `horizontalpodautoscaler/${hpaName}`.padEnd(33), e.message].join("");
}

/**
 * `kubectl get events --field-selector involvedObject.kind=HorizontalPodAutoscaler` at `nowMs`: repeats of one
 * event are aggregated as the event recorder does, shown as "age of the last (xN over age of the first)".
 */
export function eventsTable(events: HpaEvent[], hpa: HpaSpec, nowMs: number): string[] {
  const groups = new Map<string, { first: number; last: number; count: number; e: HpaEvent }>();
  for (const e of events) {
    const key = `${e.type}\0${e.reason}\0${e.message}`;
    const g = groups.get(key);
    if (g) {
      g.last = e.atMs;
      g.count++;
    } else groups.set(key, { first: e.atMs, last: e.atMs, count: 1, e });
  }
  const rows = [...groups.values()]
    .sort((a, b) => a.last - b.last)
    .map((g) => [
      g.count > 1
        ? `${humanDuration(nowMs - g.last)} (x${g.count} over ${humanDuration(nowMs - g.first)})`
        : humanDuration(nowMs - g.last),
      g.e.type,
      g.e.reason,
      `horizontalpodautoscaler/${hpa.name}`,
      g.e.message,
    ]);
  return table([COLUMNS, ...rows]);
}

/** The TARGETS column of `kubectl get hpa`: the current value as a quantity over the target. */
export function targetsColumn(metric: number | undefined, targetValue: number): string {
  if (metric === undefined) return `<unknown>/${targetValue}`;
  const milli = Math.round(metric * 1000);
  return `${milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`}/${targetValue}`;
}
