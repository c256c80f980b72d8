#!/usr/bin/env python3
"""Checks helm/baton without a cluster: `helm lint --strict`, and the objects
`helm template` renders with the default values and with values-custom.yaml
(probes, securityContext, volumes, the peer list, the optional objects), and
that the schema refuses bad values with a message naming them.

Usage: chart_test.py HELM_BINARY
"""
import json
import os
import subprocess
import sys
import unittest

import yaml

HELM = None
HERE = os.path.dirname(os.path.abspath(__file__))
CHART = os.path.join(HERE, "..", "..", "helm", "baton")
CUSTOM = os.path.join(HERE, "values-custom.yaml")
# The default values but for the one choice a release must make.
INSECURE = ["--set", "insecure=true"]


def helm(*args):
    return subprocess.run([HELM, *args], capture_output=True, text=True,
                          timeout=120)


def render(*args):
    done = helm("template", "r", CHART, "--namespace", "prod", *args)
    if done.returncode != 0:
        raise AssertionError(done.stderr)
    return [o for o in yaml.safe_load_all(done.stdout) if o]


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def args_of(statefulset):
    return statefulset["spec"]["template"]["spec"]["containers"][0]["args"]


def flag(args, name):
    for a in args:
        if a.startswith(name + "="):
            return a[len(name) + 1:]
    return None


class Lint(unittest.TestCase):
    def test_lint_strict_passes_with_plaintext_chosen_and_custom_values(self):
        for extra in (INSECURE, ["-f", CUSTOM]):
            done = helm("lint", "--strict", CHART, *extra)
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)

    def test_a_release_must_choose_tls_or_plaintext(self):
        done = helm("template", "r", CHART)
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("set tls.existingSecret", done.stderr)
        self.assertIn("insecure=true", done.stderr)


class Defaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.objects = render(*INSECURE)
        (cls.sts,) = by_kind(cls.objects, "StatefulSet")
        cls.pod = cls.sts["spec"]["template"]["spec"]
        (cls.container,) = cls.pod["containers"]

    def test_the_workload_is_a_parallel_statefulset_with_a_volume_each(self):
        spec = self.sts["spec"]
        self.assertEqual(spec["replicas"], 3)
        self.assertEqual(spec["podManagementPolicy"], "Parallel")
        self.assertEqual(spec["serviceName"], "r-baton-headless")
        (claim,) = spec["volumeClaimTemplates"]
        self.assertEqual(claim["metadata"]["name"], "data")
        self.assertEqual(claim["spec"]["resources"]["requests"]["storage"],
                         "10Gi")
        self.assertNotIn("storageClassName", claim["spec"])

    def test_services_and_the_disruption_budget(self):
        services = {s["metadata"]["name"]: s for s in by_kind(self.objects,
                                                              "Service")}
        headless = services["r-baton-headless"]["spec"]
        self.assertEqual(headless["clusterIP"], "None")
        self.assertTrue(headless["publishNotReadyAddresses"])
        self.assertIn("r-baton", services)
        (pdb,) = by_kind(self.objects, "PodDisruptionBudget")
        self.assertEqual(pdb["spec"]["maxUnavailable"], 1)
        self.assertEqual(by_kind(self.objects, "ServiceMonitor"), [])
        self.assertEqual(by_kind(self.objects, "NetworkPolicy"), [])

    def test_probes_ask_the_grpc_health_service_on_its_own_port(self):
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            self.assertEqual(self.container[probe]["grpc"], {"port": 7425},
                             probe)
        args = args_of(self.sts)
        self.assertEqual(flag(args, "--health-listen"), "0.0.0.0:7425")
        self.assertIn("--insecure", args)
        self.assertIsNone(flag(args, "--tls-cert"))
        startup = self.container["startupProbe"]
        # Long enough to load a large backlog before liveness starts.
        self.assertGreaterEqual(
            startup["periodSeconds"] * startup["failureThreshold"], 600)

    def test_it_runs_unprivileged_on_a_read_only_root(self):
        self.assertTrue(self.pod["securityContext"]["runAsNonRoot"])
        self.assertEqual(self.pod["securityContext"]["seccompProfile"],
                         {"type": "RuntimeDefault"})
        sc = self.container["securityContext"]
        self.assertTrue(sc["readOnlyRootFilesystem"])
        self.assertFalse(sc["allowPrivilegeEscalation"])
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        mounts = {m["mountPath"]: m["name"]
                  for m in self.container["volumeMounts"]}
        self.assertEqual(mounts, {"/var/lib/baton": "data", "/tmp": "tmp"})
        volumes = {v["name"]: v for v in self.pod["volumes"]}
        self.assertEqual(volumes["tmp"], {"name": "tmp", "emptyDir": {}})

    def test_stopping_leaves_time_for_the_last_group_commit(self):
        self.assertEqual(
            self.container["lifecycle"]["preStop"]["sleep"]["seconds"], 5)
        self.assertGreater(self.pod["terminationGracePeriodSeconds"], 5 + 3)

    def test_every_node_is_told_every_pod_and_the_shard_count(self):
        args = args_of(self.sts)
        self.assertEqual(
            flag(args, "--peers").split(","),
            [f"r-baton-{i}.r-baton-headless.prod.svc.cluster.local:7420"
             for i in range(3)])
        self.assertEqual(flag(args, "--pod-name"), "$(POD_NAME)")
        self.assertEqual(flag(args, "--cluster-shards"), "3")
        self.assertEqual(flag(args, "--shards"), "1")
        self.assertEqual(
            flag(args, "--advertise-address"),
            "$(POD_NAME).r-baton-headless.prod.svc.cluster.local:7420")
        self.assertIsNone(flag(args, "--admin-token-file"))
        env = {e["name"]: e for e in self.container["env"]}
        self.assertEqual(env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"],
                         "metadata.name")


class Custom(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.objects = render("-f", CUSTOM)
        (cls.sts,) = by_kind(cls.objects, "StatefulSet")
        cls.container = cls.sts["spec"]["template"]["spec"]["containers"][0]

    def test_more_nodes_and_shards(self):
        args = args_of(self.sts)
        self.assertEqual(self.sts["spec"]["replicas"], 5)
        self.assertEqual(len(flag(args, "--peers").split(",")), 5)
        self.assertEqual(flag(args, "--shards"), "2")
        self.assertEqual(flag(args, "--cluster-shards"), "10")
        self.assertIn("--retry-max-ms=60000", args)
        self.assertEqual(self.container["image"],
                         "registry.example.com/baton/batond:1.2.3")
        claim = self.sts["spec"]["volumeClaimTemplates"][0]["spec"]
        self.assertEqual(claim["storageClassName"], "fast-ssd")

    def test_the_admin_token_comes_from_the_secret(self):
        args = args_of(self.sts)
        self.assertEqual(flag(args, "--admin-token-file"),
                         "/etc/baton/admin/token")
        volumes = {v["name"]: v
                   for v in self.sts["spec"]["template"]["spec"]["volumes"]}
        self.assertEqual(volumes["admin-token"]["secret"]["secretName"],
                         "baton-admin")
        mounts = {m["name"]: m for m in self.container["volumeMounts"]}
        self.assertTrue(mounts["admin-token"]["readOnly"])

    def test_tls_from_the_secret_on_every_port_but_health(self):
        args = args_of(self.sts)
        self.assertEqual(flag(args, "--tls-cert"), "/etc/baton/tls/tls.crt")
        self.assertEqual(flag(args, "--tls-key"), "/etc/baton/tls/tls.key")
        self.assertEqual(flag(args, "--tls-ca"), "/etc/baton/tls/ca.crt")
        self.assertEqual(flag(args, "--tls-client-ca"),
                         "/etc/baton/tls/ca.crt")
        self.assertNotIn("--insecure", args)
        volumes = {v["name"]: v
                   for v in self.sts["spec"]["template"]["spec"]["volumes"]}
        self.assertEqual(volumes["tls"]["secret"]["secretName"], "baton-tls")
        mounts = {m["name"]: m for m in self.container["volumeMounts"]}
        self.assertEqual(mounts["tls"]["mountPath"], "/etc/baton/tls")
        self.assertTrue(mounts["tls"]["readOnly"])

    def test_the_authorization_policy_as_json_in_a_config_map(self):
        args = args_of(self.sts)
        self.assertEqual(flag(args, "--authz-policy"),
                         "/etc/baton/authz/policy.json")
        (config,) = [o for o in by_kind(self.objects, "ConfigMap")
                     if o["metadata"]["name"] == "r-baton-authz"]
        policy = json.loads(config["data"]["policy.json"])
        self.assertEqual(policy["participants"][0]["resources"], ["bank-*"])
        self.assertEqual(policy["adminIdentities"],
                         ["spiffe://example.org/ops"])
        volumes = {v["name"]: v
                   for v in self.sts["spec"]["template"]["spec"]["volumes"]}
        self.assertEqual(volumes["authz"]["configMap"]["name"],
                         config["metadata"]["name"])
        annotations = self.sts["spec"]["template"]["metadata"]["annotations"]
        self.assertIn("baton.io/authz-policy", annotations)

    def test_service_monitor_and_network_policy(self):
        (monitor,) = by_kind(self.objects, "ServiceMonitor")
        self.assertEqual(monitor["metadata"]["labels"]["release"],
                         "prometheus")
        endpoint = monitor["spec"]["endpoints"][0]
        self.assertEqual(endpoint["port"], "metrics")
        self.assertEqual(endpoint["scheme"], "https")
        self.assertEqual(endpoint["tlsConfig"]["serverName"],
                         "r-baton.prod.svc")
        (policy,) = by_kind(self.objects, "NetworkPolicy")
        grpc_rule = policy["spec"]["ingress"][0]
        allowed = [p["podSelector"]["matchLabels"] for p in grpc_rule["from"]]
        self.assertIn({"app": "payments"}, allowed)
        self.assertIn({"app": "orders"}, allowed)
        self.assertEqual(grpc_rule["ports"], [{"port": 7420}])

    def test_alerting_rules_each_point_at_a_runbook_section(self):
        (rule,) = by_kind(self.objects, "PrometheusRule")
        self.assertEqual(rule["metadata"]["labels"]["release"], "prometheus")
        rules = rule["spec"]["groups"][0]["rules"]
        self.assertEqual(
            {r["alert"] for r in rules},
            {"BatonNeedsAttention", "BatonOldestUnfinishedTooOld",
             "BatonPhaseTwoFailuresRising", "BatonStoreWriteFailed",
             "BatonResourceWithoutParticipant"})
        with open(os.path.join(HERE, "..", "..", "docs",
                               "OPERATIONS.md")) as f:
            headings = {line.lstrip("#").strip() for line in f
                        if line.startswith("#")}
        for r in rules:
            self.assertIn('namespace="prod"', r["expr"], r["alert"])
            self.assertIn(r["alert"], headings,
                          "OPERATIONS.md has no section " + r["alert"])
            self.assertEqual(r["annotations"]["runbook"],
                             "docs/OPERATIONS.md, section " + r["alert"])
            self.assertEqual(
                r["annotations"]["runbook_url"],
                "https://docs.example.com/baton/OPERATIONS.md#"
                + r["alert"].lower())
        (old,) = [r for r in rules
                  if r["alert"] == "BatonOldestUnfinishedTooOld"]
        self.assertTrue(old["expr"].endswith("> 660"), old["expr"])

    def test_the_dashboard_for_grafanas_sidecar(self):
        (config,) = [o for o in by_kind(self.objects, "ConfigMap")
                     if o["metadata"]["name"] == "r-baton-dashboard"]
        self.assertEqual(config["metadata"]["labels"]["grafana_dashboard"],
                         "1")
        dashboard = json.loads(config["data"]["baton.json"])
        with open(os.path.join(CHART, "dashboards", "baton.json")) as f:
            self.assertEqual(dashboard, json.load(f))
        titles = {p["title"] for p in dashboard["panels"]}
        for wanted in ("Throughput", "Transaction latency",
                       "Phase-two retries by resource", "Needs attention",
                       "Oldest unfinished", "Store sync latency"):
            self.assertIn(wanted, titles)


POSTGRES = [*INSECURE, "--set", "store=postgres",
            "--set", "postgres.existingSecret=baton-db"]


class Postgres(unittest.TestCase):
    """store: postgres: a Deployment whose pods lease the shards."""

    @classmethod
    def setUpClass(cls):
        cls.objects = render(*POSTGRES)
        (cls.deployment,) = by_kind(cls.objects, "Deployment")
        cls.pod = cls.deployment["spec"]["template"]["spec"]
        (cls.container,) = cls.pod["containers"]
        cls.leveldb = render(*INSECURE)

    def test_the_workload_is_a_deployment_without_volumes_of_its_own(self):
        self.assertEqual(by_kind(self.objects, "StatefulSet"), [])
        spec = self.deployment["spec"]
        self.assertEqual(spec["replicas"], 3)
        self.assertNotIn("volumeClaimTemplates", spec)
        self.assertEqual(spec["strategy"]["rollingUpdate"]["maxUnavailable"],
                         0)
        volumes = {v["name"]: v for v in self.pod["volumes"]}
        self.assertEqual(volumes["data"], {"name": "data", "emptyDir": {}})
        self.assertNotIn("persistentVolumeClaim", volumes["data"])

    def test_the_dsn_comes_from_the_secret_and_the_shards_are_leased(self):
        env = {e["name"]: e for e in self.container["env"]}
        self.assertEqual(env["BATON_POSTGRES"]["valueFrom"]["secretKeyRef"],
                         {"name": "baton-db", "key": "dsn"})
        self.assertEqual(env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"],
                         "status.podIP")
        args = args_of(self.deployment)
        self.assertEqual(flag(args, "--store"), "postgres")
        self.assertEqual(flag(args, "--cluster-shards"), "12")
        self.assertEqual(flag(args, "--lease-ms"), "5000")
        self.assertIsNone(flag(args, "--shards"))
        self.assertIsNone(flag(args, "--postgres"))  # Not in the pod spec.
        self.assertEqual(flag(args, "--advertise-address"), "$(POD_IP):7420")
        self.assertEqual(flag(args, "--peers"),
                         "r-baton-headless.prod.svc.cluster.local:7420")

    def test_the_same_probes_budget_and_services_as_the_statefulset(self):
        (sts,) = by_kind(self.leveldb, "StatefulSet")
        sts_container = sts["spec"]["template"]["spec"]["containers"][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            self.assertEqual(self.container[probe], sts_container[probe],
                             probe)
        self.assertEqual(self.container["securityContext"],
                         sts_container["securityContext"])
        (pdb,) = by_kind(self.objects, "PodDisruptionBudget")
        self.assertEqual(pdb["spec"]["maxUnavailable"], 1)
        self.assertEqual(pdb["spec"]["selector"],
                         self.deployment["spec"]["selector"])
        services = {s["metadata"]["name"] for s in by_kind(self.objects,
                                                           "Service")}
        self.assertEqual(services, {"r-baton", "r-baton-headless"})

    def test_it_needs_the_secret_and_lints(self):
        done = helm("template", "r", CHART, *INSECURE, "--set",
                    "store=postgres")
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("postgres.existingSecret", done.stderr)
        done = helm("lint", "--strict", CHART, *POSTGRES)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        for setting, named in [("store=etcd", "store"),
                               ("postgres.leaseMs=10", "postgres.leaseMs")]:
            done = helm("template", "r", CHART, *POSTGRES, "--set", setting)
            self.assertNotEqual(done.returncode, 0, setting)
            self.assertIn(named, done.stderr, setting)


class Schema(unittest.TestCase):
    def test_bad_values_fail_with_a_message_naming_them(self):
        for setting, named in [
            ("replicas=0", "replicas"),
            ("replicas=three", "replicas"),
            ("persistence.size=lots", "persistence.size"),
            ("logLevel=loud", "logLevel"),
            ("port=70000", "port"),
            ("extraArgs[0]=oops", "extraArgs"),
            ("image.pullPolicy=Sometimes", "image.pullPolicy"),
            ("healthPort=0", "healthPort"),
            ("tls.mutual=maybe", "tls.mutual"),
            ("authzPolicy.particpants[0]=x", "authzPolicy"),
        ]:
            done = helm("template", "r", CHART, *INSECURE, "--set", setting)
            self.assertNotEqual(done.returncode, 0, setting)
            self.assertIn(named, done.stderr, setting)


if __name__ == "__main__":
    HELM = sys.argv.pop(1)
    unittest.main(verbosity=2)
