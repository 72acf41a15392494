{{/*
Names, labels and the pieces every pod shares. Templates read optional map keys with `get`/`hasKey`, so
the chart renders under `missingkey=error` (tests/deploy/helm renders it that way).
*/}}

{{/* The chart's name, at most 63 characters. */}}
{{- define "distill.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object's name: the release name when it already contains the chart's name, else
<release>-<chart>. Cut to 40 characters so that <prefix>-trainer-worker-<rank> (a pod hostname) stays
within 63.
*/}}
{{- define "distill.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* <fullname>-<suffix>; called with (dict "root" $ "suffix" "coordinator"). */}}
{{- define "distill.componentName" -}}
{{- printf "%s-%s" (include "distill.fullname" .root) .suffix | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The five services, keyed by their section in values.yaml: object-name suffix, binary, config section,
and ports (the contract every deployment of distill shares: gRPC 50050-50054, metrics 9400-9404).
`artifacts` says whether the service mounts the artifact store.
*/}}
{{- define "distill.components" -}}
coordinator:
  suffix: coordinator
  binary: distill-coordinator
  section: coordinator
  grpcPort: 50050
  metricsPort: 9400
  artifacts: true
teacherGateway:
  suffix: teacher-gateway
  binary: distill-teacher-gateway
  section: teacher_gateway
  grpcPort: 50051
  metricsPort: 9401
  artifacts: false
curator:
  suffix: curator
  binary: distill-curator
  section: curator
  grpcPort: 50052
  metricsPort: 9402
  artifacts: true
trainer:
  suffix: trainer
  binary: distill-trainer
  section: trainer
  grpcPort: 50053
  metricsPort: 9403
  artifacts: true
inference:
  suffix: inference
  binary: distill-inference
  section: inference
  grpcPort: 50054
  metricsPort: 9404
  artifacts: true
{{- end }}

{{/* The OpenAI-compatible HTTP port of inference (its config's default http_address). */}}
{{- define "distill.inferenceHttpPort" -}}8000{{- end }}

{{/* The chart label. */}}
{{- define "distill.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object; called with (dict "root" $ "component" "coordinator"). */}}
{{- define "distill.labels" -}}
helm.sh/chart: {{ include "distill.chart" .root }}
{{ include "distill.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: distill
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that select one component's pods. */}}
{{- define "distill.selectorLabels" -}}
app.kubernetes.io/name: {{ include "distill.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The service account pods run as. */}}
{{- define "distill.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "distill.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference of a component: its own image values where set, else the top-level ones; a digest
wins over a tag. Called with (dict "root" $ "image" .Values.<component>.image).
*/}}
{{- define "distill.image" -}}
{{- $global := .root.Values.image }}
{{- $repository := default $global.repository .image.repository }}
{{- $digest := default $global.digest .image.digest }}
{{- if $digest }}
{{- printf "%s@%s" $repository $digest }}
{{- else }}
{{- printf "%s:%s" $repository (default .root.Chart.AppVersion (default $global.tag .image.tag)) }}
{{- end }}
{{- end }}

{{- define "distill.imagePullPolicy" -}}
{{- default .root.Values.image.pullPolicy .image.pullPolicy }}
{{- end }}

{{/*
A container's resources with `gpu` GPUs added to its limits (extended resources need no request).
Called with (dict "root" $ "resources" ... "gpu" N).
*/}}
{{- define "distill.resources" -}}
{{- $resources := deepCopy (default dict .resources) }}
{{- if gt (int .gpu) 0 }}
{{- $limits := default dict (get $resources "limits") }}
{{- $_ := set $limits .root.Values.gpu.resourceName (int .gpu) }}
{{- $_ := set $resources "limits" $limits }}
{{- end }}
{{- toYaml $resources }}
{{- end }}

{{/*
Scheduling of a pod: nodeSelector, tolerations, affinity and runtimeClassName, with the gpu.* additions
for pods that ask for GPUs. Called with (dict "root" $ "values" <component values> "gpu" N).
*/}}
{{- define "distill.scheduling" -}}
{{- $gpu := gt (int .gpu) 0 }}
{{- $nodeSelector := deepCopy (default dict .values.nodeSelector) }}
{{- $tolerations := default list .values.tolerations }}
{{- if $gpu }}
{{- $nodeSelector = merge $nodeSelector .root.Values.gpu.nodeSelector }}
{{- $tolerations = concat $tolerations .root.Values.gpu.tolerations }}
{{- if .root.Values.gpu.runtimeClassName }}
runtimeClassName: {{ .root.Values.gpu.runtimeClassName }}
{{- end }}
{{- end }}
{{- with $nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The pod spec fields every distill pod shares (service account, pull secrets, security context). */}}
{{- define "distill.podCommon" -}}
serviceAccountName: {{ include "distill.serviceAccountName" . }}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/* The name of the Secret holding the services' bearer token, and its key. */}}
{{- define "distill.authSecretName" -}}
{{- default (include "distill.componentName" (dict "root" . "suffix" "auth")) .Values.auth.existingSecret }}
{{- end }}

{{/* The name of the Secret holding the teacher API keys. */}}
{{- define "distill.teacherSecretName" -}}
{{- default (include "distill.componentName" (dict "root" . "suffix" "teacher-keys")) .Values.teacherGateway.secret.existingSecret }}
{{- end }}

{{/*
The volume of one persistence.* entry: its PVC (the chart's or an existing one) or an emptyDir.
Called with (dict "root" $ "name" "artifacts" "key" "artifacts").
*/}}
{{- define "distill.persistentVolume" -}}
{{- $p := index .root.Values.persistence .key -}}
- name: {{ .name }}
{{- if $p.enabled }}
  persistentVolumeClaim:
    claimName: {{ default (include "distill.componentName" (dict "root" .root "suffix" .name)) $p.existingClaim }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- end }}

{{/*
The config file of a component: the chart's settings (ports, log, paths under /data, the other
services' addresses) with the component's `config` values merged over them.
Called with (dict "root" $ "key" "coordinator").
*/}}
{{- define "distill.config" -}}
{{- $root := .root }}
{{- $c := index (include "distill.components" $root | fromYaml) .key }}
{{- $server := dict "grpc_address" (printf "0.0.0.0:%d" (int $c.grpcPort)) "metrics_address" (printf "0.0.0.0:%d" (int $c.metricsPort)) }}
{{- if $root.Values.auth.enabled }}
{{- $_ := set $server "auth" (dict "token_env" "DISTILL_TOKEN") }}
{{- end }}
{{- $section := dict }}
{{- if eq .key "coordinator" }}
{{- $_ := set $section "database" "/data/coordinator/coordinator.db" }}
{{- $_ := set $section "artifact_root" "/data/artifacts" }}
{{- range $key, $other := include "distill.components" $root | fromYaml }}
{{- if ne $key "coordinator" }}
{{- $host := include "distill.componentName" (dict "root" $root "suffix" $other.suffix) }}
{{- $_ := set $section (printf "%s_address" $other.section) (printf "%s.%s.svc:%d" $host $root.Release.Namespace (int $other.grpcPort)) }}
{{- end }}
{{- end }}
{{- if $root.Values.auth.enabled }}
{{- $_ := set $section "service_token_env" "DISTILL_TOKEN" }}
{{- end }}
{{- else if eq .key "teacherGateway" }}
{{- $_ := set $section "cache_path" "/data/teacher-cache/teacher-cache.sqlite" }}
{{- else }}
{{- $_ := set $section "artifact_root" "/data/artifacts" }}
{{- end }}
{{- $config := dict "server" $server "log" (dict "level" $root.Values.log.level "format" $root.Values.log.format) $c.section $section }}
{{- $values := index $root.Values .key }}
{{- toYaml (mergeOverwrite $config (deepCopy $values.config)) }}
{{- end }}

{{/*
The action of a startup or readiness probe (probes.kind): gRPC health on the gRPC port, or GET /readyz
on the metrics port. Called with (dict "root" $ "port" <gRPC port>).
*/}}
{{- define "distill.readyProbe" -}}
{{- if eq .root.Values.probes.kind "grpc" -}}
grpc:
  port: {{ int .port }}
{{- else -}}
httpGet:
  path: /readyz
  port: metrics
{{- end }}
{{- end }}
