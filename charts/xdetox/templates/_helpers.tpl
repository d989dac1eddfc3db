{{- define "xdetox.labels" -}}
app.kubernetes.io/name: xdetox
app.kubernetes.io/part-of: xdetox
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- /* <repository>@<digest> when the image has its own digest, else <repository>:<tag> (or @sha256:...) */ -}}
{{- define "xdetox.image" -}}
{{- $own := index .root.Values.images .name | default dict -}}
{{- $repo := $own.repository | default (printf "%s/xdetox-%s" (trimSuffix "/" .root.Values.images.registry) .name) -}}
{{- if $own.digest -}}
{{- printf "%s@%s" $repo $own.digest -}}
{{- else -}}
{{- $sep := ternary "@" ":" (hasPrefix "sha256:" .root.Values.images.tag) -}}
{{- printf "%s%s%s" $repo $sep .root.Values.images.tag -}}
{{- end -}}
{{- end -}}
