{{/* The release's name for its objects, at most 63 characters. */}}
{{- define "baton.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "baton.headless" -}}
{{- printf "%s-headless" (include "baton.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "baton.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "baton.labels" -}}
{{ include "baton.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Pod N's stable DNS name through the headless Service, with the port. */}}
{{- define "baton.podAddress" -}}
{{- $root := index . 0 -}}
{{- $ordinal := index . 1 -}}
{{- printf "%s-%d.%s.%s.svc.%s:%d" (include "baton.fullname" $root) $ordinal (include "baton.headless" $root) $root.Release.Namespace $root.Values.clusterDomain (int $root.Values.port) -}}
{{- end -}}

{{/* Every pod's address, comma separated: each node's --peers. */}}
{{- define "baton.peers" -}}
{{- $root := . -}}
{{- $peers := list -}}
{{- range $i := until (int .Values.replicas) -}}
{{- $peers = append $peers (include "baton.podAddress" (list $root $i)) -}}
{{- end -}}
{{- join "," $peers -}}
{{- end -}}

{{/* A release says how its ports are secured: TLS from a Secret, or
plaintext on purpose. */}}
{{- define "baton.requireTransportChoice" -}}
{{- if and (not .Values.tls.existingSecret) (not .Values.insecure) -}}
{{- fail "baton: set tls.existingSecret (a Secret with tls.crt, tls.key and ca.crt, as cert-manager writes) or insecure=true; batond will not serve plaintext beyond loopback unless told to" -}}
{{- end -}}
{{- end -}}
