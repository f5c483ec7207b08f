{{- define "ch.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ch.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "ch.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ch.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "ch.redisUrls" -}}
{{- if .Values.redis.bundled.enabled -}}
{{- list (printf "redis://%s-redis:6379" (include "ch.fullname" .)) | toJson -}}
{{- else -}}
{{- .Values.redis.urls | toJson -}}
{{- end -}}
{{- end -}}

{{/* Non-root, read-only, nothing extra: every container of the chart. */}}
{{- define "ch.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- define "ch.podSecurity" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* An exec probe running the standard gRPC health check over mutual TLS (kubelet's own gRPC probe
     cannot present a client certificate). */}}
{{- define "ch.healthProbe" -}}
exec:
  command: ["clearing", "health", "--addr", {{ printf "https://127.0.0.1:%v" .port | quote }}]
{{- end -}}

{{- define "ch.probeEnv" -}}
- name: CLEARING_CA
  value: /etc/clearing/probe/ca.crt
- name: CLEARING_CLIENT_CERT
  value: /etc/clearing/probe/tls.crt
- name: CLEARING_CLIENT_KEY
  value: /etc/clearing/probe/tls.key
- name: CLEARING_TLS_SERVER_NAME
  value: {{ .serverName | quote }}
{{- end -}}

{{- define "ch.otelEnv" -}}
{{- if .Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .Values.otel.endpoint | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ .Values.otel.tracesSampler | quote }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ .Values.otel.tracesSamplerArg | quote }}
{{- if .Values.otel.resourceAttributes }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ .Values.otel.resourceAttributes | quote }}
{{- end }}
{{- end }}
{{- end -}}
