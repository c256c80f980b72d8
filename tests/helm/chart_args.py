#!/usr/bin/env python3
"""Prints, as JSON, what each pod of the chart's StatefulSet runs: its name,
its stable address and batond's arguments with $(POD_NAME) filled in, for
a test that starts the same topology as local processes.

Usage: chart_args.py HELM_BINARY REPLICAS [helm template flags...]
"""
import json
import os
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CHART = os.path.join(HERE, "..", "..", "helm", "baton")


def main():
    helm, replicas, extra = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    done = subprocess.run(
        [helm, "template", "r", CHART, "--namespace", "test",
         "--set", f"replicas={replicas}", *extra],
        capture_output=True, text=True, timeout=120, check=True)
    (sts,) = [o for o in yaml.safe_load_all(done.stdout)
              if o and o["kind"] == "StatefulSet"]
    name = sts["metadata"]["name"]
    service = sts["spec"]["serviceName"]
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    port = next(p["containerPort"] for p in container["ports"]
                if p["name"] == "grpc")
    pods = []
    for ordinal in range(sts["spec"]["replicas"]):
        pod = f"{name}-{ordinal}"
        pods.append({
            "pod": pod,
            "address": f"{pod}.{service}.test.svc.cluster.local:{port}",
            "args": [a.replace("$(POD_NAME)", pod) for a in container["args"]],
        })
    json.dump(pods, sys.stdout)


if __name__ == "__main__":
    main()
