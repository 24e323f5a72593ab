{{/*
Checks across values that values.schema.json cannot express with a readable message. Each failure names the
values to change.
*/}}
{{- define "kle.validate" -}}
{{- $v := .Values -}}
{{- if and (eq $v.pluginServer.mode "kongImage") (not $v.kong.image) -}}
{{- fail "pluginServer.mode=kongImage needs kong.image: a Kong image with Node.js and the plugin installed (build images/kong.Dockerfile). With Kong's stock image use pluginServer.mode=injected." -}}
{{- end -}}
{{- if and $v.nativeSidecars (semverCompare "<1.29.0-0" .Capabilities.KubeVersion.Version) -}}
{{- fail (printf "nativeSidecars=true needs Kubernetes 1.29 or later (native sidecar containers); this cluster is %s. Set nativeSidecars=false." .Capabilities.KubeVersion.Version) -}}
{{- end -}}
{{- $ingest := $v.exporter.ingestAddress -}}
{{- $token := $v.exporter.ingestToken.existingSecret -}}
{{- if not (regexMatch "^((\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):[0-9]{1,5}|unix:(/[A-Za-z0-9._-]+)+)$" $ingest) -}}
{{- fail (printf "exporter.ingestAddress=%s: expected HOST:PORT, [IPv6]:PORT or unix:/path/on/the/shared/volume.sock (a path of letters, digits, '.', '_' and '-')." $ingest) -}}
{{- end -}}
{{- $loopback := regexMatch "^((127\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}|localhost|\\[::1\\]):[0-9]{1,5}|unix:.*)$" $ingest -}}
{{- if and (not $loopback) (not $token) -}}
{{- fail (printf "exporter.ingestAddress=%s is neither loopback nor a Unix socket, and no ingest token is set: whoever can reach it could inject latencies (the exporter refuses to start so). Use a loopback address (127.0.0.1:PORT, localhost:PORT or [::1]:PORT; the pod's containers share the network) or a Unix socket (unix:%s/<name>.sock), or set exporter.ingestToken.existingSecret to a Secret holding a token (at least 16 characters): the exporter then requires it on every ingest request, and the plugin sends it." $ingest $v.pluginServer.socketDir) -}}
{{- end -}}
{{- $kongPorts := list 8000 8443 8100 8444 -}}
{{- if has (int $v.exporter.metricsPort) $kongPorts -}}
{{- fail (printf "exporter.metricsPort=%d is taken in the Kong pod (the operator's Kong listens on 8000 proxy, 8443 proxy-ssl, 8100 status/metrics, 8444 admin): choose another port." (int $v.exporter.metricsPort)) -}}
{{- end -}}
{{- if not (hasPrefix "unix:" $ingest) -}}
{{- $port := regexReplaceAll "^.*:" $ingest "" | int -}}
{{- if or (has $port $kongPorts) (eq $port (int $v.exporter.metricsPort)) -}}
{{- fail (printf "exporter.ingestAddress=%s: port %d is already used in the Kong pod (Kong: 8000, 8443, 8100, 8444; exporter.metricsPort: %d)." $ingest $port (int $v.exporter.metricsPort)) -}}
{{- end -}}
{{- if or (lt $port 1) (gt $port 65535) -}}
{{- fail (printf "exporter.ingestAddress=%s: port %d is not between 1 and 65535." $ingest $port) -}}
{{- end -}}
{{- end -}}
{{- if and (hasPrefix "unix:" $v.exporter.ingestAddress) (not (hasPrefix (printf "unix:%s/" $v.pluginServer.socketDir) $v.exporter.ingestAddress)) -}}
{{- fail (printf "exporter.ingestAddress=%s: a Unix socket must live on the shared volume, i.e. unix:%s/<name>.sock (pluginServer.socketDir), for the plugin to reach it." $v.exporter.ingestAddress $v.pluginServer.socketDir) -}}
{{- end -}}
{{- $window := include "kle.durationMs" $v.exporter.percentileWindow | float64 -}}
{{- if or (lt $window 6000.0) (gt $window 3600000.0) -}}
{{- fail (printf "exporter.percentileWindow=%s: the exporter takes 6s to 1h (the window moves in sixths of its length)." $v.exporter.percentileWindow) -}}
{{- end -}}
{{- $idle := include "kle.durationMs" $v.exporter.seriesIdleTimeout | float64 -}}
{{- if or (lt $idle 10000.0) (gt $idle 604800000.0) -}}
{{- fail (printf "exporter.seriesIdleTimeout=%s: the exporter takes 10s to 168h." $v.exporter.seriesIdleTimeout) -}}
{{- end -}}
{{- /* Flags the chart sets from values: the same flag in extraArgs, or its variable in extraEnv, would silently win or lose. */ -}}
{{- $flags := dict "--metrics-address" "exporter.metricsPort" "--ingest-address" "exporter.ingestAddress" "--log-level" "exporter.logLevel" "--percentile-window" "exporter.percentileWindow" "--max-series" "exporter.maxSeries" "--series-idle-timeout" "exporter.seriesIdleTimeout" "--ingest-token-file" "exporter.ingestToken" "--buckets" "exporter.buckets" "--mapping-file" "exporter.mapping" -}}
{{- range $v.exporter.extraArgs -}}
{{- $flag := regexReplaceAll "=.*$" . "" -}}
{{- if hasKey $flags $flag -}}
{{- fail (printf "exporter.extraArgs: %s is set by the chart; use %s instead." $flag (get $flags $flag)) -}}
{{- end -}}
{{- end -}}
{{- /* The variable of a flag the chart passes only when its value is set still works without it. */ -}}
{{- $passed := omit $flags -}}
{{- if not $v.exporter.buckets }}{{ $passed = omit $passed "--buckets" }}{{ end -}}
{{- if not $v.exporter.mapping }}{{ $passed = omit $passed "--mapping-file" }}{{ end -}}
{{- if not $token }}{{ $passed = omit $passed "--ingest-token-file" }}{{ end -}}
{{- range $v.exporter.extraEnv -}}
{{- $flag := printf "--%s" (trimPrefix "LATENCY_EXPORTER_" .name | lower | replace "_" "-") -}}
{{- if and (hasPrefix "LATENCY_EXPORTER_" .name) (hasKey $passed $flag) -}}
{{- fail (printf "exporter.extraEnv: %s is ignored, the chart passes %s (the flag wins over the variable); use %s instead." .name $flag (get $flags $flag)) -}}
{{- end -}}
{{- end -}}
{{- include "kle.checkKongListen" (list . "kong.extraEnv" $v.kong.extraEnv) -}}
{{- range $i, $c := dig "containers" list $v.podTemplate.spec -}}
{{- if eq $c.name "proxy" -}}
{{- include "kle.checkKongListen" (list $ (printf "podTemplate.spec.containers[%d].env" $i) ($c.env | default list)) -}}
{{- end -}}
{{- end -}}
{{- $gcSpec := $v.gatewayConfiguration.spec | default dict -}}
{{- $dp := get $gcSpec "dataPlaneOptions" | default dict -}}
{{- $dep := get $dp "deployment" | default dict -}}
{{- if hasKey $dep "podTemplateSpec" -}}
{{- fail "gatewayConfiguration.spec.dataPlaneOptions.deployment.podTemplateSpec is built by the chart: put pod fields in podTemplate.spec (merged into it), labels and annotations in podTemplate.labels and .annotations." -}}
{{- end -}}
{{- include "kle.checkClusterPluginClass" . -}}
{{- if and $v.monitoring.enabled (eq $v.monitoring.kind "ServiceMonitor") (not $v.metricsService.enabled) -}}
{{- fail "monitoring.kind=ServiceMonitor scrapes the metrics Service: set metricsService.enabled=true, or use monitoring.kind=PodMonitor." -}}
{{- end -}}
{{- if and $v.autoscaling.hpa.enabled $v.autoscaling.keda.enabled -}}
{{- fail "autoscaling.hpa.enabled and autoscaling.keda.enabled are both true: KEDA creates its own HPA, and two autoscalers would fight over the same workloads. Enable one." -}}
{{- end -}}
{{- if and (or $v.autoscaling.hpa.enabled $v.autoscaling.keda.enabled) (not $v.autoscaling.targets) -}}
{{- fail "autoscaling is enabled but autoscaling.targets is empty: list the workloads to scale (see values.yaml)." -}}
{{- end -}}
{{- $seen := dict -}}
{{- range $i, $t := $v.autoscaling.targets -}}
{{- $name := $t.name | default $t.workload.name -}}
{{- $ns := $t.namespace | default $.Release.Namespace -}}
{{- $key := printf "%s/%s" $ns $name -}}
{{- if hasKey $seen $key -}}
{{- fail (printf "autoscaling.targets[%d]: another target is already named %s (set a distinct name)." $i $key) -}}
{{- end -}}
{{- $_ := set $seen $key true -}}
{{- $wl := printf "workload %s/%s %s" $ns ($t.workload.kind | default "Deployment") $t.workload.name -}}
{{- if hasKey $seen $wl -}}
{{- fail (printf "autoscaling.targets[%d]: another target already scales %s; two autoscalers would fight. Put both averageMs and p99Ms in one target instead." $i (trimPrefix "workload " $wl)) -}}
{{- end -}}
{{- $_ = set $seen $wl true -}}
{{- if not (or (hasKey $t "averageMs") (hasKey $t "p99Ms") (hasKey $t "fleetP99Ms")) -}}
{{- fail (printf "autoscaling.targets[%d] (%s): set averageMs (scale on the 60s average) and/or p99Ms (the worst pod's p99) and/or fleetP99Ms (the p99 of all pods, from native histograms), in milliseconds." $i $key) -}}
{{- end -}}
{{- if lt (int $t.maxReplicas) (int ($t.minReplicas | default 1)) -}}
{{- fail (printf "autoscaling.targets[%d] (%s): maxReplicas %d is below minReplicas %d." $i $key (int $t.maxReplicas) (int ($t.minReplicas | default 1))) -}}
{{- end -}}
{{- if $v.autoscaling.hpa.enabled -}}
{{- if and (hasKey $t "averageMs") (not $v.prometheusAdapter.average) -}}
{{- fail (printf "autoscaling.targets[%d] (%s) sets averageMs, but prometheusAdapter.average=false: the adapter would not serve kong_upstream_latency_ms_60s_average." $i $key) -}}
{{- end -}}
{{- if and (hasKey $t "p99Ms") (not $v.prometheusAdapter.p99) -}}
{{- fail (printf "autoscaling.targets[%d] (%s) sets p99Ms, but prometheusAdapter.p99=false: the adapter would not serve kong_upstream_latency_ms_p99." $i $key) -}}
{{- end -}}
{{- if and (hasKey $t "fleetP99Ms") (not $v.prometheusAdapter.fleetP99) -}}
{{- fail (printf "autoscaling.targets[%d] (%s) sets fleetP99Ms, but prometheusAdapter.fleetP99=false: the adapter would not serve kong_upstream_latency_ms_fleet_p99." $i $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
A KONG_*_LISTEN variable of the proxy on a port of the exporter: the pod's containers share one network.
(Gateway listeners never reach the pod: the operator maps them to Service ports targeting 8000/8443.)
Argument: (list $root "where the list is set" envVars).
*/}}
{{- define "kle.checkKongListen" -}}
{{- $v := (index . 0).Values -}}
{{- $where := index . 1 -}}
{{- $taken := dict (toString (int $v.exporter.metricsPort)) "exporter.metricsPort" -}}
{{- if not (hasPrefix "unix:" $v.exporter.ingestAddress) -}}
{{- $_ := set $taken (regexReplaceAll "^.*:" $v.exporter.ingestAddress "") "exporter.ingestAddress" -}}
{{- end -}}
{{- range (index . 2) -}}
{{- if regexMatch "^KONG_[A-Z_]*LISTEN$" .name -}}
{{- $env := . -}}
{{- range regexFindAll ":[0-9]+" (.value | default "") -1 -}}
{{- $port := trimPrefix ":" . -}}
{{- if hasKey $taken $port -}}
{{- fail (printf "%s: %s=%s makes Kong listen on port %s, the exporter's (%s): choose another port for one of them." $where $env.name $env.value $port (get $taken $port)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
A KongClusterPlugin reaches every control plane of its ingress class, and each operator-managed one takes
"kong" unless told otherwise: the plugin needs a class of its own, which this configuration's control plane
takes (v2beta1: the chart sets controlPlaneOptions.ingressClass; v1beta1: the controller's environment).
*/}}
{{- define "kle.checkClusterPluginClass" -}}
{{- $v := .Values -}}
{{- $class := $v.plugin.kongClusterPlugin.ingressClass -}}
{{- if $v.plugin.kongClusterPlugin.enabled -}}
{{- if or (not $class) (eq $class "kong") -}}
{{- fail (printf "plugin.kongClusterPlugin.enabled needs plugin.kongClusterPlugin.ingressClass, a class of its own (got %q): every operator-managed control plane takes class \"kong\" unless told otherwise, and a Gateway whose Kong pods lack the plugin would get a configuration Kong refuses, and stop syncing. Prefer plugin.kongPlugins, attached to the routes or services to measure." $class) -}}
{{- end -}}
{{- $spec := $v.gatewayConfiguration.spec -}}
{{- if eq $v.gatewayConfiguration.apiVersion "gateway-operator.konghq.com/v2beta1" -}}
{{- $given := dig "controlPlaneOptions" "ingressClass" "" $spec -}}
{{- if and $given (ne $given $class) -}}
{{- fail (printf "gatewayConfiguration.spec.controlPlaneOptions.ingressClass=%s differs from plugin.kongClusterPlugin.ingressClass=%s: the control plane would not take the KongClusterPlugin. Leave the former unset (the chart sets it) or make them equal." $given $class) -}}
{{- end -}}
{{- else -}}
{{- $set := "" -}}
{{- range dig "controlPlaneOptions" "deployment" "podTemplateSpec" "spec" "containers" list $spec -}}
{{- if eq .name "controller" -}}
{{- range .env -}}
{{- if eq .name "CONTROLLER_INGRESS_CLASS" }}{{ $set = .value }}{{ end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if ne $set $class -}}
{{- fail (printf "plugin.kongClusterPlugin.ingressClass=%s with gatewayConfiguration.apiVersion v1beta1: give the control plane the class too, in gatewayConfiguration.spec.controlPlaneOptions.deployment.podTemplateSpec.spec.containers: [{name: controller, env: [{name: CONTROLLER_INGRESS_CLASS, value: %s}]}]." $class $class) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A duration of the exporter's form ("60s", "1.5m", "500ms"; values.schema.json checks the form) in milliseconds. */}}
{{- define "kle.durationMs" -}}
{{- $n := regexFind "^[0-9]+(\\.[0-9]+)?" . -}}
{{- $unit := trimPrefix $n . -}}
{{- mulf (float64 $n) (get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000) $unit) -}}
{{- end -}}
