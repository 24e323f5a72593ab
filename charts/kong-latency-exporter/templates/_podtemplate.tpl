{{/*
The data plane pod template patch: the operator merges it into the Deployment it generates for each
DataPlane (strategic merge patch: containers and initContainers by name, env by name, volumeMounts by
mountPath, volumes by name).
*/}}

{{- define "kle.kongEnv" -}}
- name: KONG_PLUGINS
  value: {{ append .Values.kong.plugins (include "kle.plugin" .) | uniq | join "," | quote }}
- name: KONG_PLUGINSERVER_NAMES
  value: {{ include "kle.plugin" . }}
- name: {{ include "kle.kongServerKey" . }}_SOCKET
  value: {{ include "kle.socketPath" . }}
{{- if eq .Values.pluginServer.mode "kongImage" }}
{{- $bin := list (include "kle.kongNode" .) (include "kle.pluginServerBin" .) | toYaml }}
- name: {{ include "kle.kongServerKey" . }}_START_CMD
  value: {{ printf "%s\n%s" $bin (include "kle.serveArgs" .) | include "kle.cmdline" | quote }}
- name: {{ include "kle.kongServerKey" . }}_QUERY_CMD
  value: {{ printf "%s\n%s" $bin (include "kle.dumpArgs" .) | include "kle.cmdline" | quote }}
{{- else }}
{{- /* No start_cmd: Kong assumes external process management and only connects to the socket. */}}
- name: {{ include "kle.kongServerKey" . }}_QUERY_CMD
  value: {{ printf "cat %s" (include "kle.pluginInfoPath" .) | quote }}
{{- end }}
{{- with .Values.kong.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "kle.sharedMount" -}}
- name: {{ include "kle.sharedVolume" . }}
  mountPath: {{ .Values.pluginServer.socketDir }}
{{- end -}}

{{/* The ingest token's mount, for the exporter and the plugin server's container; empty without a token. */}}
{{- define "kle.tokenMount" -}}
{{- if .Values.exporter.ingestToken.existingSecret -}}
- name: {{ include "kle.tokenVolume" . }}
  mountPath: {{ include "kle.tokenDir" . }}
  readOnly: true
{{- end -}}
{{- end -}}

{{/* Exec probe without a shell (distroless): succeeds once the plugin server accepts connections. */}}
{{- define "kle.socketProbe" -}}
exec:
  command:
    - {{ include "kle.node" . }}
    - -e
    - {{ printf "require('net').connect(%s).on('connect',()=>process.exit(0)).on('error',()=>process.exit(1))" (include "kle.socketPath" . | squote) | quote }}
{{- end -}}

{{/* Argument: (dict "root" $ "native" bool). */}}
{{- define "kle.pluginServerContainer" -}}
{{- $root := .root -}}
{{- with $root -}}
- name: upstream-latency
  image: {{ include "kle.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if $.native }}
  # A native sidecar: started before Kong (once the startup probe passes), stopped after it.
  restartPolicy: Always
  {{- end }}
  command:
    - {{ include "kle.node" . }}
    - {{ include "kle.pluginServerBin" . }}
  args:
    {{- include "kle.serveArgs" . | nindent 4 }}
  {{- with .Values.pluginServer.extraEnv }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  startupProbe:
    {{- include "kle.socketProbe" . | nindent 4 }}
    periodSeconds: 1
    timeoutSeconds: 5
    failureThreshold: 60
  livenessProbe:
    {{- include "kle.socketProbe" . | nindent 4 }}
    periodSeconds: 30
    timeoutSeconds: 5
    failureThreshold: 3
  resources:
    {{- toYaml .Values.pluginServer.resources | nindent 4 }}
  securityContext:
    {{- include "kle.securityContext" . | nindent 4 }}
  volumeMounts:
    {{- include "kle.sharedMount" . | nindent 4 }}
    {{- with include "kle.tokenMount" . }}
    {{- . | nindent 4 }}
    {{- end }}
{{- end -}}
{{- end -}}

{{/*
No readiness probe: a pod is ready only when all its containers are, and the exporter must never take Kong
out of its Service or the DataPlane out of Ready. Argument: (dict "root" $ "native" bool).
*/}}
{{- define "kle.exporterContainer" -}}
{{- $root := .root -}}
{{- with $root -}}
- name: latency-exporter
  image: {{ include "kle.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if $.native }}
  # A native sidecar declared before the plugin server's: stopped last, after Kong and the plugin server.
  restartPolicy: Always
  {{- end }}
  command:
    - {{ include "kle.node" . }}
    - {{ include "kle.appDir" . }}/dist/lib/sidecar/cli.js
  args:
    - --metrics-address
    - {{ printf "0.0.0.0:%d" (.Values.exporter.metricsPort | int) | quote }}
    - --ingest-address
    - {{ .Values.exporter.ingestAddress | quote }}
    - --log-level
    - {{ .Values.exporter.logLevel }}
    - --percentile-window
    - {{ .Values.exporter.percentileWindow | quote }}
    - --max-series
    - {{ .Values.exporter.maxSeries | int | quote }}
    - --series-idle-timeout
    - {{ .Values.exporter.seriesIdleTimeout | quote }}
    {{- if .Values.exporter.ingestToken.existingSecret }}
    - --ingest-token-file
    - {{ include "kle.tokenFile" . }}
    {{- end }}
    {{- with .Values.exporter.buckets }}
    - --buckets
    - {{ join "," . | quote }}
    {{- end }}
    {{- if .Values.exporter.mapping }}
    - --mapping-file
    - {{ include "kle.mappingDir" . }}/mapping.yaml
    {{- end }}
    {{- range .Values.exporter.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  {{- with .Values.exporter.extraEnv }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    - name: {{ include "kle.metricsPortName" . }}
      containerPort: {{ .Values.exporter.metricsPort }}
      protocol: TCP
  livenessProbe:
    httpGet:
      path: /healthz
      port: {{ include "kle.metricsPortName" . }}
    periodSeconds: 15
    timeoutSeconds: 5
    failureThreshold: 4
  lifecycle:
    # Serves the last counts a while longer, for Prometheus's last scrape (no shell in the image: node waits).
    preStop:
      exec:
        command:
          - {{ include "kle.node" . }}
          - -e
          - {{ printf "setTimeout(() => {}, %d)" (mul (.Values.exporter.stopDelaySeconds | int) 1000) | quote }}
  resources:
    {{- toYaml .Values.exporter.resources | nindent 4 }}
  securityContext:
    {{- include "kle.securityContext" . | nindent 4 }}
  {{- if or .Values.exporter.mapping (hasPrefix "unix:" .Values.exporter.ingestAddress) .Values.exporter.ingestToken.existingSecret }}
  volumeMounts:
    {{- if hasPrefix "unix:" .Values.exporter.ingestAddress }}
    {{- include "kle.sharedMount" . | nindent 4 }}
    {{- end }}
    {{- if .Values.exporter.mapping }}
    - name: {{ include "kle.mappingVolume" . }}
      mountPath: {{ include "kle.mappingDir" . }}
      readOnly: true
    {{- end }}
    {{- with include "kle.tokenMount" . }}
    {{- . | nindent 4 }}
    {{- end }}
  {{- end }}
{{- end -}}
{{- end -}}

{{- define "kle.podTemplateSpec" -}}
{{- $injected := eq .Values.pluginServer.mode "injected" -}}
{{- $native := .Values.nativeSidecars -}}
metadata:
  labels:
    {{- include "kle.selectorLabels" . | nindent 4 }}
    {{- with .Values.podTemplate.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if or .Values.podTemplate.annotations .Values.exporter.mapping }}
  annotations:
    {{- with .Values.podTemplate.annotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with .Values.exporter.mapping }}
    # A change rolls the Kong pods: the exporter reads its mapping at start.
    {{ include "kle.mappingAnnotation" $ }}: {{ toYaml . | quote }}
    {{- end }}
  {{- end }}
spec:
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- range . }}
    - name: {{ . }}
    {{- end }}
  {{- end }}
  volumes:
    - name: {{ include "kle.sharedVolume" . }}
      emptyDir:
        sizeLimit: 16Mi
    {{- if .Values.exporter.mapping }}
    - name: {{ include "kle.mappingVolume" . }}
      downwardAPI:
        items:
          - path: mapping.yaml
            fieldRef:
              fieldPath: {{ printf "metadata.annotations['%s']" (include "kle.mappingAnnotation" .) }}
    {{- end }}
    {{- with .Values.exporter.ingestToken.existingSecret }}
    - name: {{ include "kle.tokenVolume" $ }}
      secret:
        secretName: {{ . }}
        items:
          - key: {{ $.Values.exporter.ingestToken.key | quote }}
            path: token
    {{- end }}
  {{- if or $injected $native }}
  initContainers:
  {{- end }}
  {{- if $injected }}
    # Writes the plugin info Kong's query_cmd reads (`cat`), before Kong starts: the real dump of
    # kong-js-pluginserver, checked to be the JSON array Kong expects and written atomically.
    - name: upstream-latency-info
      image: {{ include "kle.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command:
        - {{ include "kle.node" . }}
        - {{ include "kle.appDir" . }}/bin/write-plugin-info.js
      args:
        - --out
        - {{ include "kle.pluginInfoPath" . }}
        - --expect
        - {{ include "kle.plugin" . }}
        - --
        - {{ include "kle.node" . }}
        - {{ include "kle.pluginServerBin" . }}
        {{- include "kle.dumpArgs" . | nindent 8 }}
      resources:
        requests:
          cpu: 50m
          memory: 64Mi
        limits:
          memory: 384Mi
      securityContext:
        {{- include "kle.securityContext" . | nindent 8 }}
      volumeMounts:
        {{- include "kle.sharedMount" . | nindent 8 }}
  {{- end }}
  {{- if $native }}
    {{- include "kle.exporterContainer" (dict "root" . "native" true) | nindent 4 }}
    {{- if $injected }}
    {{- include "kle.pluginServerContainer" (dict "root" . "native" true) | nindent 4 }}
    {{- end }}
  {{- end }}
  containers:
    - name: proxy
      {{- with .Values.kong.image }}
      image: {{ . }}
      {{- end }}
      env:
        {{- include "kle.kongEnv" . | nindent 8 }}
      volumeMounts:
        {{- include "kle.sharedMount" . | nindent 8 }}
        {{- if not $injected }}
        {{- /* kongImage: the plugin server is Kong's child, in this container. */}}
        {{- with include "kle.tokenMount" . }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- end }}
    {{- if and $injected (not $native) }}
    {{- include "kle.pluginServerContainer" (dict "root" . "native" false) | nindent 4 }}
    {{- end }}
    {{- if not $native }}
    {{- include "kle.exporterContainer" (dict "root" . "native" false) | nindent 4 }}
    {{- end }}
{{- end -}}
