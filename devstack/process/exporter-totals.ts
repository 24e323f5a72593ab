import { request } from "undici";

/** What the sidecar counted, summed over its series, and what it was told was lost. */
export interface ExporterTotals {
  /** Sum of kong_upstream_latency_ms_count over every series. */
  count: number;
  /** The kong_service label of every series with a count. */
  kongServices: Set<string>;
  /** latency_exporter_plugin_dropped_events_total, by reason (overflow: beyond the plugin's max_services). */
  dropped: Record<string, number>;
  /** latency_exporter_series_overflow_events_total: events beyond the sidecar's own --max-series. */
  seriesOverflow: number;
}

const COUNT = "kong_upstream_latency_ms_count{";
const DROPPED = /^latency_exporter_plugin_dropped_events_total\{reason="([^"]*)"\} (\S+)$/;
const SERIES_OVERFLOW = /^latency_exporter_series_overflow_events_total (\S+)$/;

/** Reads /metrics as a stream, line by line: at 50,000 series the text is hundreds of MB, too big to hold. */
export async function exporterTotals(metricsUrl: string): Promise<ExporterTotals> {
  const res = await request(`${metricsUrl}/metrics`);
  if (res.statusCode !== 200) throw new Error(`${metricsUrl}/metrics: HTTP ${res.statusCode}`);
  const totals: ExporterTotals = { count: 0, kongServices: new Set(), dropped: {}, seriesOverflow: 0 };
  const line = (l: string) => {
    if (l.startsWith(COUNT)) {
      totals.count += Number(l.slice(l.lastIndexOf(" ") + 1));
      const svc = /kong_service="([^"]*)"/.exec(l);
      if (svc) totals.kongServices.add(svc[1]);
      return;
    }
    const d = DROPPED.exec(l);
    if (d) totals.dropped[d[1]] = Number(d[2]);
    const o = SERIES_OVERFLOW.exec(l);
    if (o) totals.seriesOverflow = Number(o[1]);
  };
  let rest = "";
  // Decoded as a stream: a character split between two chunks stays whole.
  for await (const chunk of res.body.setEncoding("utf8")) {
    const lines = (rest + (chunk as string)).split("\n");
    rest = lines.pop()!;
    lines.forEach(line);
  }
  line(rest);
  return totals;
}
