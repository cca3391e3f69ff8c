{{/* Names and labels. */}}
{{- define "conduit.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "conduit.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: web, worker or migrate. */}}
{{- define "conduit.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "conduit.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "conduit.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ .Values.serviceAccount.name | default (include "conduit.fullname" .) }}
{{- else -}}
{{ .Values.serviceAccount.name | default "default" }}
{{- end -}}
{{- end -}}

{{/* The Secret holding the database URL, and its key. */}}
{{- define "conduit.databaseSecret" -}}
{{- if .Values.database.url -}}
{{ include "conduit.fullname" . }}
{{- else if .Values.database.existingSecret -}}
{{ .Values.database.existingSecret }}
{{- else -}}
{{ fail "set database.url or database.existingSecret: Conduit on Kubernetes needs PostgreSQL (several pods cannot share the embedded SQLite database)" }}
{{- end -}}
{{- end -}}
{{- define "conduit.databaseSecretKey" -}}
{{ ternary "database-url" .Values.database.existingSecretKey (not (empty .Values.database.url)) }}
{{- end -}}

{{/* The Secret holding the signing keys, and its key. */}}
{{- define "conduit.jwtSecret" -}}
{{ .Values.auth.existingSecret | default (include "conduit.fullname" .) }}
{{- end -}}
{{- define "conduit.jwtSecretKey" -}}
{{ ternary .Values.auth.existingSecretKey "jwt-keys" (not (empty .Values.auth.existingSecret)) }}
{{- end -}}

{{/* Environment shared by the web and worker pods. */}}
{{- define "conduit.env" -}}
- name: CONDUIT_DATA_DIR
  value: /data
- name: CONDUIT_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "conduit.databaseSecret" . }}
      key: {{ include "conduit.databaseSecretKey" . }}
- name: CONDUIT_JWT_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ include "conduit.jwtSecret" . }}
      key: {{ include "conduit.jwtSecretKey" . }}
{{- include "conduit.secretEnv" (dict "root" . "env" "CONDUIT_REPLICA_URLS" "key" "replica-urls" "v" .Values.database.replicas "value" .Values.database.replicas.urls) }}
{{- include "conduit.secretEnv" (dict "root" . "env" "CONDUIT_CACHE_URL" "key" "redis-url" "v" .Values.cache "value" .Values.cache.url) }}
{{- include "conduit.secretEnv" (dict "root" . "env" "CONDUIT_QUEUE_URL" "key" "nats-url" "v" .Values.queue "value" .Values.queue.url) }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* An optional URL from a Secret (it may hold a password): from the
chart's Secret under .key when .value is given, else from .v.existingSecret
when named, else nothing. */}}
{{- define "conduit.secretEnv" -}}
{{- if or .value .v.existingSecret }}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ ternary (include "conduit.fullname" .root) .v.existingSecret (not (empty .value)) }}
      key: {{ ternary .key .v.existingSecretKey (not (empty .value)) }}
{{- end }}
{{- end -}}

{{/* Non-root, read-only root filesystem; the image's user is 65532. */}}
{{- define "conduit.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}
{{- define "conduit.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* /tmp (SQLite temporary files) and /data (unused with PostgreSQL and
shared keys, but the data dir must be writable) on a read-only root. */}}
{{- define "conduit.volumes" -}}
- name: tmp
  emptyDir: {}
- name: data
  emptyDir: {}
{{- end -}}
{{- define "conduit.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /data
{{- end -}}
