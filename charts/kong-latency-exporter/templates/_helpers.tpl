{{/*
Names, labels and the constants that tie the chart to the images (images/*.Dockerfile) and to Kong.
*/}}

{{- define "kle.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kle.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A name for a secondary object: "<fullname>-<suffix>", cut to 63 characters. */}}
{{- define "kle.suffixed" -}}
{{- $root := index . 0 -}}
{{- $suffix := index . 1 -}}
{{- $full := include "kle.fullname" $root -}}
{{- $max := sub 62 (len $suffix) | int -}}
{{- printf "%s-%s" ($full | trunc $max | trimSuffix "-") $suffix -}}
{{- end -}}

{{- define "kle.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kle.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kle.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kle.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kong-latency-exporter
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "kle.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* ---- Constants shared with the images ---------------------------------------------------------- */}}

{{/* The plugin's name, the plugin server's name in kong.conf (pluginserver_names), and the file names. */}}
{{- define "kle.plugin" -}}upstream-latency{{- end -}}
{{/* pluginserver_<name>_*: Kong replaces dashes with underscores in the server's keys. */}}
{{- define "kle.kongServerKey" -}}KONG_PLUGINSERVER_UPSTREAM_LATENCY{{- end -}}
{{/* Where images/*.Dockerfile install the application (dist/, node_modules/, bin/write-plugin-info.js). */}}
{{- define "kle.appDir" -}}/opt/upstream-latency{{- end -}}
{{/* Node.js in the distroless image (gcr.io/distroless/nodejs20-debian12). */}}
{{- define "kle.node" -}}/nodejs/bin/node{{- end -}}
{{/* Node.js in the Kong image built from images/kong.Dockerfile. Absolute: nginx clears PATH. */}}
{{- define "kle.kongNode" -}}/usr/local/bin/node{{- end -}}
{{- define "kle.pluginDir" -}}{{ include "kle.appDir" . }}/dist/plugin{{- end -}}
{{- define "kle.pluginServerBin" -}}{{ include "kle.appDir" . }}/node_modules/kong-pdk/bin/kong-js-pluginserver{{- end -}}
{{- define "kle.sockName" -}}upstream-latency.sock{{- end -}}
{{- define "kle.socketPath" -}}{{ .Values.pluginServer.socketDir }}/{{ include "kle.sockName" . }}{{- end -}}
{{- define "kle.pluginInfoPath" -}}{{ .Values.pluginServer.socketDir }}/upstream-latency.json{{- end -}}
{{- define "kle.sharedVolume" -}}upstream-latency{{- end -}}
{{/* exporter.mapping travels in this pod-template annotation, projected by a downwardAPI volume: unlike a
ConfigMap it exists for every Kong pod, whatever its namespace. */}}
{{- define "kle.mappingAnnotation" -}}kong-latency-exporter/mapping{{- end -}}
{{- define "kle.mappingVolume" -}}latency-exporter-mapping{{- end -}}
{{- define "kle.mappingDir" -}}/etc/latency-exporter{{- end -}}
{{/* The ingest token (exporter.ingestToken): a Secret volume, mounted read-only wherever the plugin or the
exporter runs. Not under mappingDir: a mount point inside a projected volume cannot be created. */}}
{{- define "kle.tokenVolume" -}}latency-exporter-ingest-token{{- end -}}
{{- define "kle.tokenDir" -}}/etc/upstream-latency/ingest-token{{- end -}}
{{- define "kle.tokenFile" -}}{{ include "kle.tokenDir" . }}/token{{- end -}}
{{/*
The added containers' security context. The operator's hardened mode (dataPlaneOptions.deployment.hardened)
runs Kong as 65532:65532, and Kong must share the plugin server's user to connect to its socket.
*/}}
{{- define "kle.securityContext" -}}
{{- $sc := deepCopy .Values.securityContext -}}
{{- if eq (dig "dataPlaneOptions" "deployment" "hardened" "" .Values.gatewayConfiguration.spec) "enabled" -}}
{{- $_ := set $sc "runAsUser" 65532 -}}
{{- $_ = set $sc "runAsGroup" 65532 -}}
{{- end -}}
{{- toYaml $sc -}}
{{- end -}}

{{/* Container port name: the operator's proxy container already names a port "metrics". */}}
{{- define "kle.metricsPortName" -}}latency-metrics{{- end -}}

{{/* kong-js-pluginserver's serving flags (also the tail of Kong's start_cmd in kongImage mode). */}}
{{- define "kle.serveArgs" -}}
- --plugins-directory
- {{ include "kle.pluginDir" . }}
- --kong-prefix
- {{ .Values.pluginServer.socketDir }}
- --sock-name
- {{ include "kle.sockName" . }}
{{- range .Values.pluginServer.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}

{{/* kong-js-pluginserver's dump flags: prints the plugin-info JSON array Kong expects on stdout. */}}
{{- define "kle.dumpArgs" -}}
- --plugins-directory
- {{ include "kle.pluginDir" . }}
- --dump-all-plugins
{{- end -}}

{{/* A YAML list of strings joined into one command line (Kong runs *_cmd through /bin/sh). */}}
{{- define "kle.cmdline" -}}
{{- join " " (fromYamlArray .) -}}
{{- end -}}

{{/*
The plugin's exporter_url: given, or derived from the exporter's ingest address. The plugin runs in the same pod,
so an exporter listening on every interface (0.0.0.0, [::]) is reached on loopback.
*/}}
{{- define "kle.exporterUrl" -}}
{{- $addr := .Values.exporter.ingestAddress -}}
{{- if .Values.plugin.config.exporter_url -}}
{{- .Values.plugin.config.exporter_url -}}
{{- else if hasPrefix "unix:" $addr -}}
{{- $addr -}}
{{- else -}}
{{- $port := regexReplaceAll "^.*:" $addr "" -}}
{{- $host := regexReplaceAll ":[0-9]+$" $addr "" -}}
{{- $host = get (dict "0.0.0.0" "127.0.0.1" "[::]" "[::1]") $host | default $host -}}
{{- printf "http://%s:%s" $host $port -}}
{{- end -}}
{{- end -}}

{{/* The plugin's full configuration, as Kong would store it. */}}
{{- define "kle.pluginConfig" -}}
exporter_url: {{ include "kle.exporterUrl" . | quote }}
{{- if .Values.exporter.ingestToken.existingSecret }}
exporter_token_file: {{ include "kle.tokenFile" . | quote }}
{{- end }}
flush_interval: {{ .Values.plugin.config.flush_interval }}
latencies:
{{- range .Values.plugin.config.latencies }}
  - {{ . | quote }}
{{- end }}
max_services: {{ .Values.plugin.config.max_services | int }}
{{- end -}}

{{/*
The label that holds the Kubernetes Service's name once Prometheus has scraped the exporter: the exporter's
`service` label collides with the ServiceMonitor target's own `service` label and becomes exported_service
(honorLabels: false); a PodMonitor target has no `service` label, so the name stays `service`. Both kinds
of target have a `namespace` label, so the namespace is always exported_namespace.
*/}}
{{- define "kle.serviceLabel" -}}
{{- if and .Values.monitoring.enabled (eq .Values.monitoring.kind "PodMonitor") -}}service{{- else -}}exported_service{{- end -}}
{{- end -}}
{{- define "kle.namespaceLabel" -}}exported_namespace{{- end -}}

{{- define "kle.gatewayConfigurationName" -}}
{{- .Values.gatewayConfiguration.name | default (include "kle.fullname" .) -}}
{{- end -}}

{{- define "kle.adapterRulesName" -}}
{{- .Values.prometheusAdapter.rulesConfigMap.name | default (include "kle.suffixed" (list . "adapter-rules")) -}}
{{- end -}}

{{/*
PromQL of the two custom metrics, shared by the adapter rules (with <<.LabelMatchers>>) and the KEDA triggers
(with the target's own matchers). Argument: (list $root $matchers).
The average is the autoscaling guide's metricsQuery, character for character when the service label is
exported_service.
*/}}
{{- define "kle.averageQuery" -}}
{{- $root := index . 0 -}}
{{- $m := index . 1 -}}
{{- $svc := include "kle.serviceLabel" $root -}}
sum by ({{ $svc }}) (rate(kong_upstream_latency_ms_sum{ {{- $m -}} }[60s:10s]))
  /
sum by ({{ $svc }}) (rate(kong_upstream_latency_ms_count{ {{- $m -}} }[60s:10s]))
{{- end -}}

{{/*
The fleet p99: every Kong pod's requests together, from the native histogram family (Prometheus with
--enable-feature=native-histograms), within one bucket (2.2%) of the exact p99; NaN when idle.
*/}}
{{- define "kle.fleetP99Query" -}}
{{- $root := index . 0 -}}
{{- $m := index . 1 -}}
{{- $svc := include "kle.serviceLabel" $root -}}
histogram_quantile(0.99, sum by ({{ $svc }}) (rate(kong_upstream_latency_ms_native{ {{- $m -}} }[1m])))
{{- end -}}

{{- define "kle.p99Query" -}}
{{- $root := index . 0 -}}
{{- $m := index . 1 -}}
{{- $svc := include "kle.serviceLabel" $root -}}
max by ({{ $svc }}) (kong_upstream_latency_ms_percentile{ {{- $m -}} ,quantile="0.99"})
{{- end -}}
