{{/* The pod of either workload: the StatefulSet's (store: leveldb, a volume
per pod) or the Deployment's (store: postgres, no volume). */}}
{{- define "baton.podTemplate" -}}
metadata:
  {{- if .Values.authzPolicy }}
  annotations:
    # A changed policy rolls the pods: batond reads it at start.
    baton.io/authz-policy: {{ toJson .Values.authzPolicy | sha256sum }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- else if .Values.podAnnotations }}
  annotations:
    {{- toYaml .Values.podAnnotations | nindent 4 }}
  {{- end }}
  labels:
    {{- include "baton.selectorLabels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    fsGroup: 65532
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: batond
      image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - --listen=0.0.0.0:{{ .Values.port }}
        - --data-dir=/var/lib/baton
        - --pod-name=$(POD_NAME)
        {{- if eq .Values.store "postgres" }}
        # Any pod may serve any shard while it holds the shard's lease; the
        # DSN comes from the Secret (BATON_POSTGRES below).
        - --store=postgres
        - --cluster-shards={{ .Values.postgres.shards }}
        - --lease-ms={{ .Values.postgres.leaseMs }}
        - --advertise-address=$(POD_IP):{{ .Values.port }}
        - --peers={{ include "baton.headless" . }}.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}:{{ .Values.port }}
        {{- else }}
        - --shards={{ .Values.shardsPerNode }}
        - --cluster-shards={{ mul .Values.replicas .Values.shardsPerNode }}
        - --advertise-address=$(POD_NAME).{{ include "baton.headless" . }}.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}:{{ .Values.port }}
        - --peers={{ include "baton.peers" . }}
        {{- end }}
        - --log-level={{ .Values.logLevel }}
        {{- if .Values.metrics.enabled }}
        - --metrics-listen=0.0.0.0:{{ .Values.metrics.port }}
        {{- end }}
        {{- if .Values.admin.existingSecret }}
        - --admin-token-file=/etc/baton/admin/{{ .Values.admin.secretKey }}
        {{- end }}
        - --health-listen=0.0.0.0:{{ .Values.healthPort }}
        {{- if .Values.tls.existingSecret }}
        - --tls-cert=/etc/baton/tls/tls.crt
        - --tls-key=/etc/baton/tls/tls.key
        - --tls-ca=/etc/baton/tls/ca.crt
        {{- if .Values.tls.mutual }}
        - --tls-client-ca=/etc/baton/tls/ca.crt
        {{- end }}
        {{- else }}
        - --insecure
        {{- end }}
        {{- if .Values.authzPolicy }}
        - --authz-policy=/etc/baton/authz/policy.json
        {{- end }}
        {{- range .Values.extraArgs }}
        - {{ . }}
        {{- end }}
      env:
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        {{- if eq .Values.store "postgres" }}
        - name: POD_IP
          valueFrom:
            fieldRef:
              fieldPath: status.podIP
        - name: BATON_POSTGRES
          valueFrom:
            secretKeyRef:
              name: {{ .Values.postgres.existingSecret }}
              key: {{ .Values.postgres.secretKey }}
        {{- end }}
      ports:
        - name: grpc
          containerPort: {{ .Values.port }}
        {{- if .Values.metrics.enabled }}
        - name: metrics
          containerPort: {{ .Values.metrics.port }}
        {{- end }}
        - name: health
          containerPort: {{ .Values.healthPort }}
      startupProbe:
        grpc:
          port: {{ .Values.healthPort }}
        periodSeconds: {{ .Values.probes.startup.periodSeconds }}
        failureThreshold: {{ .Values.probes.startup.failureThreshold }}
      readinessProbe:
        grpc:
          port: {{ .Values.healthPort }}
        periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
        failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
      livenessProbe:
        grpc:
          port: {{ .Values.healthPort }}
        periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
        failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
      lifecycle:
        preStop:
          sleep:
            seconds: {{ .Values.preStopSleepSeconds }}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities:
          drop: [ALL]
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      volumeMounts:
        - name: data
          mountPath: /var/lib/baton
        - name: tmp
          mountPath: /tmp
        {{- if .Values.admin.existingSecret }}
        - name: admin-token
          mountPath: /etc/baton/admin
          readOnly: true
        {{- end }}
        {{- if .Values.tls.existingSecret }}
        - name: tls
          mountPath: /etc/baton/tls
          readOnly: true
        {{- end }}
        {{- if .Values.authzPolicy }}
        - name: authz
          mountPath: /etc/baton/authz
          readOnly: true
        {{- end }}
  volumes:
    - name: tmp
      emptyDir: {}
    {{- if eq .Values.store "postgres" }}
    # Only the node's own files (the admin token it may generate): every
    # transaction is in PostgreSQL.
    - name: data
      emptyDir: {}
    {{- end }}
    {{- if .Values.admin.existingSecret }}
    - name: admin-token
      secret:
        secretName: {{ .Values.admin.existingSecret }}
        defaultMode: 0400
    {{- end }}
    {{- if .Values.tls.existingSecret }}
    - name: tls
      secret:
        secretName: {{ .Values.tls.existingSecret }}
        defaultMode: 0400
    {{- end }}
    {{- if .Values.authzPolicy }}
    - name: authz
      configMap:
        name: {{ include "baton.fullname" . }}-authz
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
