{{/*
podTemplate.spec, the user's fragment of the Kong pods' spec, merged into the one the chart builds the way the
operator's strategic merge patch reads lists: containers, init containers and volumes by name. A field the
chart already sets is refused rather than overridden, so the merged pod always works.
Argument: (list $root $chartPodSpec); returns the merged spec as YAML.
*/}}
{{- define "kle.mergePodSpec" -}}
{{- $spec := index . 1 -}}
{{- range $key, $value := (index . 0).Values.podTemplate.spec -}}
{{- if has $key (list "containers" "initContainers") -}}
{{- include "kle.mergeContainers" (list $key $spec $value) -}}
{{- else if eq $key "volumes" -}}
{{- $ours := list -}}
{{- range $spec.volumes }}{{ $ours = append $ours .name }}{{ end -}}
{{- range $value -}}
{{- if has .name $ours -}}
{{- fail (printf "podTemplate.spec.volumes: %s is a volume of the chart; name yours otherwise." .name) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $spec "volumes" (concat $spec.volumes $value) -}}
{{- else -}}
{{- $_ := set $spec $key $value -}}
{{- end -}}
{{- end -}}
{{- toYaml $spec -}}
{{- end -}}

{{/*
Argument: (list "containers" $chartPodSpec fragmentContainers), merged into $chartPodSpec. An entry named like
a container of the chart, in either list (the exporter is an init container as a native sidecar), adds the
fields the chart leaves unset: env, volumeMounts and ports are appended. Any other entry is added to the list.
*/}}
{{- define "kle.mergeContainers" -}}
{{- $field := index . 0 -}}
{{- $spec := index . 1 -}}
{{- $byName := dict -}}
{{- range concat ($spec.initContainers | default list) $spec.containers }}{{ $_ := set $byName .name . }}{{ end -}}
{{- $added := get $spec $field | default list -}}
{{- $appended := dict "env" "name" "volumeMounts" "mountPath" "ports" "containerPort" -}}
{{- $valuesOf := dict "latency-exporter" "exporter" "upstream-latency" "pluginServer" "upstream-latency-info" "pluginServer" "proxy" "kong" -}}
{{- range $i, $patch := index . 2 -}}
{{- $where := printf "podTemplate.spec.%s[%d] (%s)" $field $i $patch.name -}}
{{- $c := get $byName $patch.name -}}
{{- if not $c -}}
{{- $added = append $added $patch -}}
{{- else -}}
{{- range $k, $v := $patch -}}
{{- if and (eq $patch.name "latency-exporter") (has $k (list "readinessProbe" "startupProbe")) -}}
{{- fail (printf "%s: %s would let the exporter decide whether Kong gets traffic (a pod is ready only when all its containers are); it has a liveness probe only." $where $k) -}}
{{- else if hasKey $appended $k -}}
{{- $key := get $appended $k -}}
{{- range $item := $v -}}
{{- range (get $c $k | default list) -}}
{{- if eq (toString (get . $key)) (toString (get $item $key)) -}}
{{- fail (printf "%s: %s %s=%v is set by the chart; use the %s.* values." $where $k $key (get $item $key) (get $valuesOf $patch.name)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $_ := set $c $k (concat (get $c $k | default list) $v) -}}
{{- else if and (ne $k "name") (hasKey $c $k) -}}
{{- fail (printf "%s: %s is set by the chart; use the %s.* values." $where $k (get $valuesOf $patch.name)) -}}
{{- else -}}
{{- $_ := set $c $k $v -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $_ := set $spec $field $added -}}
{{- end -}}
