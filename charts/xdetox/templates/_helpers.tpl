{{- define "xdetox.labels" -}}
app.kubernetes.io/name: xdetox
app.kubernetes.io/part-of: xdetox
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "xdetox.image" -}}
{{- $sep := ternary "@" ":" (hasPrefix "sha256:" .root.Values.images.tag) -}}
{{- printf "%s/xdetox-%s%s%s" (trimSuffix "/" .root.Values.images.registry) .name $sep .root.Values.images.tag -}}
{{- end -}}
