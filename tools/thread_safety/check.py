#!/usr/bin/env python3
"""Runs clang's thread-safety analysis over the coordinator's sources.

Reads the compile commands CMake exported, and for every non-test source
under the given directories compiles it with clang++ -fsyntax-only, only the
thread-safety warnings enabled, as errors. gcc builds the binaries; this only
checks the lock annotations (ABSL_GUARDED_BY and friends), which gcc ignores.

Usage: check.py BUILD_DIR SOURCE_ROOT DIR...
Exits non-zero, printing clang's diagnostics, if any file fails.
"""
import concurrent.futures
import json
import os
import shlex
import shutil
import subprocess
import sys

FLAGS = ["-fsyntax-only", "-Wno-everything", "-Wthread-safety",
         "-Wthread-safety-reference", "-Werror"]


def clang():
    for name in ("clang++", "clang++-19", "clang++-16", "clang++-14"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("thread-safety check: clang++ not found (scripts/setup installs "
             "it)")


def command_for(entry, compiler):
    args = entry.get("arguments") or shlex.split(entry["command"])
    out, skip = [compiler], False
    for arg in args[1:]:
        if skip:
            skip = False
            continue
        if arg in ("-o", "-c"):
            skip = True
            continue
        if arg.startswith("-W") or arg.startswith("-O") or arg == "-g":
            continue
        out.append(arg)
    return out + FLAGS + [entry["file"]]


def main():
    build, root, dirs = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(os.path.join(build, "compile_commands.json")) as f:
        entries = json.load(f)
    prefixes = [os.path.join(os.path.abspath(root), d) + os.sep for d in dirs]
    compiler = clang()
    chosen = {}
    for e in entries:
        path = os.path.abspath(e["file"])
        if any(path.startswith(p) for p in prefixes) and \
                not path.endswith("_test.cc"):
            chosen[path] = e
    if not chosen:
        sys.exit("thread-safety check: no sources matched")

    def check(path):
        e = chosen[path]
        r = subprocess.run(command_for(e, compiler), cwd=e["directory"],
                           capture_output=True, text=True)
        return path, r.returncode, r.stderr

    failed = 0
    jobs = max(1, (os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        for path, code, err in pool.map(check, sorted(chosen)):
            if code != 0:
                failed += 1
                print(f"--- {os.path.relpath(path, root)}\n{err}")
    print(f"thread-safety check: {len(chosen) - failed} of {len(chosen)} "
          f"file(s) clean")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
