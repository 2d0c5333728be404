{{/*
The chart's name, and the "fullname" every object's name derives from: the release name, with
the chart's name appended unless the release name already contains it.
*/}}
{{- define "cardstream.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cardstream.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "cardstream.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The operator's objects: <fullname>-operator (54 characters at most, room for "-leader"). */}}
{{- define "cardstream.operator.fullname" -}}
{{- printf "%s-operator" (include "cardstream.fullname" . | trunc 45 | trimSuffix "-") }}
{{- end }}

{{- define "cardstream.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cardstream.operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Labels of every object the chart makes. */}}
{{- define "cardstream.labels" -}}
helm.sh/chart: {{ include "cardstream.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cardstream
{{- end }}

{{/*
The operator's selector. Its name label is <name>-operator, never the components' "cardstream",
so no selector of the operator's components (name=cardstream, instance=<CardStream>) can match
the operator's pods or Service, whatever the CardStream is called.
*/}}
{{- define "cardstream.operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cardstream.name" . }}-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cardstream.operator.labels" -}}
{{ include "cardstream.labels" . }}
app.kubernetes.io/name: {{ include "cardstream.name" . }}-operator
app.kubernetes.io/component: operator
{{- end }}

{{/*
The image the operator runs: repository:tag, the tag defaulting to the appVersion, and
@digest when image.digest pins it.
*/}}
{{- define "cardstream.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- with .Values.image.digest }}@{{ . }}{{- end }}
{{- end }}

{{/* The CardStream's name: cardstream.name, else the fullname. */}}
{{- define "cardstream.instanceName" -}}
{{- default (include "cardstream.fullname" .) .Values.cardstream.name }}
{{- end }}

{{/* PromQL label matchers the alerts add to every selector. */}}
{{- define "cardstream.alertMatchers" -}}
{{- default (printf "namespace=%q" .Release.Namespace) .Values.metrics.prometheusRule.matchers }}
{{- end }}

{{/*
A secret value the chart generates: the one already in the cluster's Secret (so an upgrade keeps
it), or 64 random characters on first install. Arguments: (list $ secretKeyRef).
*/}}
{{- define "cardstream.generatedSecret" -}}
{{- $root := index . 0 }}
{{- $ref := index . 1 }}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace $ref.name }}
{{- if and $existing (hasKey ($existing.data | default dict) $ref.key) }}
{{- index $existing.data $ref.key | b64dec }}
{{- else }}
{{- randAlphaNum 64 }}
{{- end }}
{{- end }}

{{/*
The namespaces whose CardStreams the operator reconciles (JSON array): operator.watchNamespaces,
else the release namespace.
*/}}
{{- define "cardstream.operator.watchNamespaces" -}}
{{- toJson (default (list .Release.Namespace) .Values.operator.watchNamespaces) -}}
{{- end }}

{{/*
The Secrets the operator may `get` (JSON array, RBAC resourceNames): operator.secretNames, else
(namespaced) those the chart's CardStream reads from (the webhook secrets are only mounted, the
operator never reads them), else none named: any Secret where the operator's role applies.
*/}}
{{- define "cardstream.operator.secretNames" -}}
{{- $names := .Values.operator.secretNames }}
{{- if and (not $names) .Values.cardstream.create (not .Values.rbac.clusterWide) }}
{{- $cs := .Values.cardstream }}
{{- $names = list $cs.databaseUrlSecret.name $cs.tokenSecret.name $cs.recordKeysSecret.name }}
{{- with $cs.kafka.credentialsSecret }}
{{- $names = append $names .name }}
{{- end }}
{{- end }}
{{- toJson (uniq $names) -}}
{{- end }}

{{/*
Image repositories CardStreams may run (comma-separated): operator.allowedImages, else the
chart's own image repository.
*/}}
{{- define "cardstream.operator.allowedImages" -}}
{{- join "," (default (list .Values.image.repository) .Values.operator.allowedImages) -}}
{{- end }}
