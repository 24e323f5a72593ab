{{/*
prometheus-adapter rules (the adapter's config.yaml `rules:` list). The average rule is the autoscaling guide's,
verbatim when scraped through the ServiceMonitor; kong-config/prometheus-adapter/values.yaml holds the same
rules as values for the prometheus-adapter chart (test/deploy checks that they agree).
*/}}
{{- define "kle.adapterRules" -}}
{{- $svc := include "kle.serviceLabel" . -}}
{{- $ns := include "kle.namespaceLabel" . -}}
{{- if .Values.prometheusAdapter.average }}
- seriesQuery: '{__name__=~"^kong_upstream_latency_ms_(sum|count)",kubernetes_namespace!="",kubernetes_name!="",kubernetes_kind!=""}'
  resources:
    overrides:
      {{ $ns }}:
        resource: "namespace"
      {{ $svc }}:
        resource: "service"
  name:
    as: "kong_upstream_latency_ms_60s_average"
  metricsQuery: |
    {{- include "kle.averageQuery" (list . "<<.LabelMatchers>>") | nindent 4 }}
{{- end }}
{{- if .Values.prometheusAdapter.p99 }}
- seriesQuery: '{__name__="kong_upstream_latency_ms_percentile",quantile="0.99",kubernetes_namespace!="",kubernetes_name!="",kubernetes_kind!=""}'
  resources:
    overrides:
      {{ $ns }}:
        resource: "namespace"
      {{ $svc }}:
        resource: "service"
  name:
    as: "kong_upstream_latency_ms_p99"
  metricsQuery: |
    {{- include "kle.p99Query" (list . "<<.LabelMatchers>>") | nindent 4 }}
{{- end }}
{{- if .Values.prometheusAdapter.fleetP99 }}
- seriesQuery: '{__name__="kong_upstream_latency_ms_native",kubernetes_namespace!="",kubernetes_name!="",kubernetes_kind!=""}'
  resources:
    overrides:
      {{ $ns }}:
        resource: "namespace"
      {{ $svc }}:
        resource: "service"
  name:
    as: "kong_upstream_latency_ms_fleet_p99"
  metricsQuery: |
    {{- include "kle.fleetP99Query" (list . "<<.LabelMatchers>>") | nindent 4 }}
{{- end }}
{{- end -}}
