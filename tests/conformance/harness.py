"""Harness of the Baton conformance suite.

The suite talks to batond the way a service written in another language
would: through the protos in proto/baton/v1 and plain gRPC, never through the
C++ SDK. This module holds what the tests share:

  * load_stubs(): compiles the protos with protoc into a temporary directory
    (never committed) and imports the generated modules;
  * Coordinator: one batond process on 127.0.0.1 with an ephemeral port and
    its own temporary data directory, log and admin token;
  * RawParticipant: one ParticipantService.Attach stream, read by a thread
    into queues, written from the test;
  * RawPipeline: one TransactionService.Pipeline stream, likewise;
  * wait_for() / assert_stays(): the only ways tests synchronise.
"""

import atexit
import ctypes
import importlib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import grpc

PROTO_FILES = [
    "baton/v1/types.proto",
    "baton/v1/saga.proto",
    "baton/v1/transaction_service.proto",
    "baton/v1/participant_service.proto",
    "baton/v1/admin_service.proto",
    "baton/v1/topology.proto",
    "google/rpc/status.proto",
]

# Filled in by configure() from the command line.
BIN_DIR = None
PROTO_DIR = None

# Deadline for one unary call: generous, since a build may share the two
# cores of a CI machine, but short enough to fail a hung call.
CALL_TIMEOUT_S = 10.0


def configure(bin_dir, proto_dir):
    global BIN_DIR, PROTO_DIR
    BIN_DIR = os.path.abspath(bin_dir)
    PROTO_DIR = os.path.abspath(proto_dir)


# ---------------------------------------------------------------------------
# Synchronisation


class Timeout(AssertionError):
    pass


def wait_for(cond, timeout=10.0, what="condition", interval=0.01):
    """Polls cond() until it returns a truthy value, which is returned.

    Raises Timeout (an AssertionError, so it reads as a test failure) naming
    `what` and the last value seen, which is what one needs to debug it.
    `what` may be a callable, to describe the state as it is at the timeout.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = cond()
        if last:
            return last
        if time.monotonic() >= deadline:
            if callable(what):
                what = what()
            raise Timeout(f"timed out after {timeout:.1f} s waiting for {what}"
                          f" (last value: {last!r})")
        time.sleep(interval)


def assert_stays(cond, duration, what="condition", interval=0.02):
    """Checks that cond() stays truthy for the whole of `duration`.

    The one bounded negative wait the suite allows itself: "nothing happens"
    has no event to wait for, so it is observed over a deadline loop.
    """
    deadline = time.monotonic() + duration
    while True:
        value = cond()
        if not value:
            raise AssertionError(f"{what} stopped holding before "
                                 f"{duration:.1f} s were up (value: {value!r})")
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)


# ---------------------------------------------------------------------------
# Stubs


class Stubs:
    """The generated modules, by short name (pb.types.Branch, ...)."""


_stubs = None
_stub_dir = None


def load_stubs():
    """Compiles the protos once per run and imports them."""
    global _stubs, _stub_dir
    if _stubs is not None:
        return _stubs
    _stub_dir = tempfile.mkdtemp(prefix="baton-conformance-stubs-")
    atexit.register(shutil.rmtree, _stub_dir, True)
    plugin = shutil.which("grpc_python_plugin") or "/usr/bin/grpc_python_plugin"
    cmd = ["protoc", f"--proto_path={PROTO_DIR}", f"--python_out={_stub_dir}",
           f"--grpc_out={_stub_dir}", f"--plugin=protoc-gen-grpc={plugin}"]
    cmd += [os.path.join(PROTO_DIR, f) for f in PROTO_FILES]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"protoc failed ({' '.join(cmd)}):\n{result.stderr}")
    sys.path.insert(0, _stub_dir)
    s = Stubs()
    for name in ["types", "saga", "transaction_service", "participant_service",
                 "admin_service", "topology"]:
        setattr(s, name, importlib.import_module(f"baton.v1.{name}_pb2"))
        setattr(s, name + "_grpc",
                importlib.import_module(f"baton.v1.{name}_pb2_grpc"))
    _stubs = s
    return s


def has_field(message_class, name, number):
    """True if the compiled proto has field `name` with tag `number`."""
    field = message_class.DESCRIPTOR.fields_by_name.get(name)
    return field is not None and field.number == number


# ---------------------------------------------------------------------------
# Processes

_live_processes = set()


def _kill_leftovers():
    for proc in list(_live_processes):
        if proc.poll() is None:
            proc.kill()
            proc.wait()


atexit.register(_kill_leftovers)

_PR_SET_PDEATHSIG = 1
_SETPRIV = shutil.which("setpriv")


def _die_with_parent():
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(
            _PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def _spawn(args, **kwargs):
    """Popen, with the child killed by the kernel if the suite dies.

    SIGKILL of the suite skips atexit; a parent-death signal still takes
    batond down with it. setpriv (util-linux) sets it without running Python
    in the forked child, which is unsafe in a process with gRPC's threads;
    the preexec_fn fallback is for systems without it.
    """
    if _SETPRIV:
        return subprocess.Popen([_SETPRIV, "--pdeathsig", "KILL", "--"] + args,
                                **kwargs)
    return subprocess.Popen(args, preexec_fn=_die_with_parent, **kwargs)


def _channel(port, options=(), credentials=None):
    # Default message limits on purpose (4 MiB receive): the suite checks
    # batond against what an ordinary client accepts. No proxy: the
    # environment may name one, and 127.0.0.1 must be dialled directly.
    # With `credentials` (grpc.ssl_channel_credentials), over TLS.
    options = [("grpc.enable_http_proxy", 0)] + list(options)
    target = f"127.0.0.1:{port}"
    if credentials is not None:
        return grpc.secure_channel(target, credentials, options=options)
    return grpc.insecure_channel(target, options=options)


def identity(b):
    return b


class Coordinator:
    """One batond: its temp dir, process, channel and stubs.

    The admin token is always set (a random one unless given), so every test
    can use AdminService; `admin_md` is the metadata that carries it.
    """

    def __init__(self, *extra_args, env=None, metrics=False, name="batond",
                 credentials=None):
        self.pb = load_stubs()
        self.credentials = credentials  # The suite's own channel's TLS.
        self.extra_args = list(extra_args)
        self.env_extra = dict(env or {})
        self.metrics = metrics
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"baton-conformance-{name}-")
        self.data_dir = os.path.join(self.dir, "data")
        self.token = os.urandom(16).hex()
        self.token_file = os.path.join(self.dir, "admin.token")
        with open(self.token_file, "w") as f:
            f.write(self.token + "\n")
        self.admin_md = (("authorization", f"Bearer {self.token}"),)
        self.proc = None
        self.port = None
        self.metrics_port = None
        self.channel = None
        self.starts = 0

    # -- lifecycle --

    def start(self, port=0):
        """Starts batond (again, on the same data dir when restarting)."""
        self.starts += 1
        port_file = os.path.join(self.dir, f"port.{self.starts}")
        metrics_port_file = os.path.join(self.dir, f"metrics-port.{self.starts}")
        log_path = os.path.join(self.dir, f"batond.{self.starts}.log")
        binary = os.path.join(BIN_DIR, "batond")
        args = [binary, "--listen", f"127.0.0.1:{port}", "--port-file",
                port_file, "--data-dir", self.data_dir, "--admin-token-file",
                self.token_file] + self.extra_args
        if self.metrics:
            args += ["--metrics-listen", "127.0.0.1:0", "--metrics-port-file",
                     metrics_port_file]
        env = dict(os.environ)
        env.pop("BATON_ADMIN_TOKEN", None)
        env.pop("BATON_FAILPOINTS", None)
        env.update(self.env_extra)

        def read_port(path):
            """("port", N) once written, ("exit", code) if batond died first."""
            if self.proc.poll() is not None:
                return ("exit", self.proc.returncode)
            try:
                with open(path) as f:
                    text = f.read().strip()
                return ("port", int(text)) if text else None
            except (FileNotFoundError, ValueError):
                return None

        with open(log_path, "wb") as log:
            self.proc = _spawn(args, stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT, env=env)
        _live_processes.add(self.proc)
        got = wait_for(lambda: read_port(port_file), 30,
                       f"{self.name} port file")
        if got[0] == "exit":
            raise AssertionError(f"{self.name} exited with {got[1]} before "
                                 f"serving\n{self.log_tail()}")
        self.port = got[1]
        if self.metrics:
            got = wait_for(lambda: read_port(metrics_port_file), 30,
                           f"{self.name} metrics port file")
            if got[0] == "exit":
                raise AssertionError(f"{self.name} exited with {got[1]} before "
                                     f"serving metrics\n{self.log_tail()}")
            self.metrics_port = got[1]
        self.channel = _channel(self.port, credentials=self.credentials)
        grpc.channel_ready_future(self.channel).result(timeout=30)
        self.tx = self.pb.transaction_service_grpc.TransactionServiceStub(
            self.channel)
        self.admin = self.pb.admin_service_grpc.AdminServiceStub(self.channel)
        return self

    def kill9(self):
        """SIGKILL, as a crash: nothing is flushed or closed.

        The process dies before our channel closes, so streams on it see the
        coordinator vanish rather than a cancel from our side.
        """
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        _live_processes.discard(self.proc)
        if self.channel is not None:
            self.channel.close()
            self.channel = None

    def restart(self):
        """Same data dir, same port: what participants reconnect to."""
        self.kill9()
        return self.start(port=self.port)

    def stop(self):
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _live_processes.discard(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- diagnostics --

    def log_tail(self, lines=40):
        """The end of each log this coordinator wrote (one per start)."""
        tails = []
        for n in range(1, self.starts + 1):
            path = os.path.join(self.dir, f"batond.{n}.log")
            if not os.path.exists(path):
                continue
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 16384))
                text = f.read().decode("utf-8", "replace")
            tail = "\n".join(text.splitlines()[-lines:])
            tails.append(f"--- tail of {path} ---\n{tail}")
        if not tails:
            return f"[{self.name}: no log]"
        return "\n".join(tails) + "\n--- end ---"

    # -- helpers --

    def channel_with(self, credentials):
        """A new channel to this batond, over TLS with `credentials` (or in
        plaintext with None)."""
        return _channel(self.port, credentials=credentials)

    def new_channel(self, fast_reconnect=False):
        """A channel of its own, as another process would have.

        fast_reconnect shortens gRPC's reconnect backoff (1 s by default) so
        a channel that saw batond die finds the restarted one quickly.
        """
        options = []
        if fast_reconnect:
            options = [("grpc.initial_reconnect_backoff_ms", 50),
                       ("grpc.min_reconnect_backoff_ms", 50),
                       ("grpc.max_reconnect_backoff_ms", 200)]
        return _channel(self.port, options, self.credentials)

    def raw_unary(self, method_path, channel=None):
        """A unary callable that sends and returns raw bytes."""
        return (channel or self.channel).unary_unary(
            method_path, request_serializer=identity,
            response_deserializer=identity)

    def get(self, xid, **kwargs):
        ts = self.pb.transaction_service
        return self.tx.GetTransaction(ts.GetTransactionRequest(xid=xid),
                                      timeout=CALL_TIMEOUT_S, **kwargs).transaction

    def status_of(self, xid):
        """The transaction's status, or None while batond cannot answer."""
        try:
            return self.get(xid).status
        except grpc.RpcError as e:
            if e.code() in (grpc.StatusCode.UNAVAILABLE,
                            grpc.StatusCode.DEADLINE_EXCEEDED):
                return None
            raise

    def wait_status(self, xid, status, timeout=10.0):
        name = self.pb.types.GlobalStatus.Name
        return wait_for(lambda: self.status_of(xid) == status, timeout,
                        lambda: f"{xid} to be {name(status)} (it is "
                                f"{self._status_name(xid)})")

    def _status_name(self, xid):
        try:
            return self.pb.types.GlobalStatus.Name(self.get(xid).status)
        except grpc.RpcError as e:
            return f"<{e.code().name}>"

    def scrape_metrics(self):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://127.0.0.1:{self.metrics_port}/metrics",
                         timeout=CALL_TIMEOUT_S) as r:
            return r.read().decode("utf-8", "replace")

    def metric(self, name):
        """Sum of every sample of `name` (any labels), or None if absent."""
        pattern = re.compile(
            rf"^{re.escape(name)}(?:\{{[^}}]*\}})?\s+(\S+)", re.M)
        values = [float(v) for v in pattern.findall(self.scrape_metrics())]
        return sum(values) if values else None


# ---------------------------------------------------------------------------
# Streams


class _Stream:
    """A bidirectional stream driven by a reader thread.

    Requests and responses travel as raw bytes (identity serializers), so a
    test can put bytes on the wire that are no valid message at all; send()
    serializes real messages itself. The reader thread parses every incoming
    message into `parse` and puts it on `incoming`; when the stream ends it
    records the final status code and details.
    """

    _END = object()

    def __init__(self, channel, method_path, parse, label,
                 wait_for_ready=False):
        self.label = label
        self._parse = parse
        self._outgoing = queue.Queue()
        self.incoming = queue.Queue()
        self.ended = threading.Event()
        self.code = None
        self.details = None
        self.parse_error = None
        multi = channel.stream_stream(method_path,
                                      request_serializer=identity,
                                      response_deserializer=identity)
        self._call = multi(self._requests(), wait_for_ready=wait_for_ready)
        self._reader = threading.Thread(target=self._read, daemon=True,
                                        name=f"reader-{label}")
        self._reader.start()

    def _requests(self):
        while True:
            item = self._outgoing.get()
            if item is self._END:
                return
            yield item

    def _read(self):
        try:
            for raw in self._call:
                try:
                    message = self._parse(raw)
                except Exception as e:  # a reply we cannot parse is a finding
                    self.parse_error = e
                    continue
                self.on_message(message)
            self.code = grpc.StatusCode.OK
            self.details = self._call.details()
        except grpc.RpcError as e:
            self.code = e.code()
            self.details = e.details()
        finally:
            self.ended.set()

    def on_message(self, message):
        self.incoming.put(message)

    def send_bytes(self, data):
        self._outgoing.put(bytes(data))

    def send(self, message):
        self.send_bytes(message.SerializeToString())

    def half_close(self):
        self._outgoing.put(self._END)

    def cancel(self):
        self._call.cancel()
        self._outgoing.put(self._END)
        self.ended.wait(5)

    def wait_end(self, timeout=10.0):
        """Waits for the server to end the stream: (code, details)."""
        wait_for(self.ended.is_set, timeout, f"{self.label} stream to end")
        return self.code, self.details

    def ensure_open(self):
        if self.ended.is_set():
            raise AssertionError(f"{self.label} stream ended: "
                                 f"{self.code} {self.details!r}")

    def close(self):
        if not self.ended.is_set():
            self.cancel()


class RawParticipant(_Stream):
    """A participant on one Attach stream, answered by hand from the test.

    Incoming commands are flattened (a BranchCommands message yields each of
    its commands), so tests see a sequence of BranchCommand whatever batching
    batond chose; `messages` keeps the messages as they came.
    """

    def __init__(self, coordinator, channel=None, label="participant",
                 wait_for_ready=False):
        self.pb = coordinator.pb
        ps = self.pb.participant_service
        self.commands = queue.Queue()
        self.messages = []
        self.welcome = threading.Event()
        super().__init__(channel or coordinator.channel,
                         "/baton.v1.ParticipantService/Attach",
                         ps.CoordinatorMessage.FromString, label,
                         wait_for_ready=wait_for_ready)

    def on_message(self, message):
        self.messages.append(message)
        kind = message.WhichOneof("kind")
        if kind == "welcome":
            self.welcome.set()
        elif kind == "command":
            self.commands.put(message.command)
        elif kind == "commands":
            for c in message.commands.commands:
                self.commands.put(c)
        super().on_message(message)

    def hello(self, resources, service="conformance", instance_id=None,
              reads_command_batches=True, wait_welcome=True, **extra):
        ps = self.pb.participant_service
        hello = ps.Hello(service=service,
                         instance_id=instance_id or f"{self.label}-{id(self)}",
                         resources=list(resources),
                         reads_command_batches=reads_command_batches, **extra)
        self.send(ps.ParticipantMessage(hello=hello))
        if wait_welcome:
            wait_for(lambda: self.welcome.is_set() or self.ended.is_set(), 10,
                     f"{self.label} Welcome")
            self.ensure_open()
        return self

    def next_command(self, timeout=10.0):
        """The next BranchCommand; fails if the stream ends first."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.commands.get(timeout=0.02)
            except queue.Empty:
                pass
            if self.ended.is_set() and self.commands.empty():
                raise AssertionError(
                    f"{self.label} stream ended while waiting for a command: "
                    f"{self.code} {self.details!r}")
            if time.monotonic() >= deadline:
                raise Timeout(f"{self.label}: no BranchCommand within "
                              f"{timeout:.1f} s")

    def next_commands(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        got = []
        try:
            while len(got) < n:
                got.append(self.next_command(
                    max(0.05, deadline - time.monotonic())))
        except AssertionError as e:
            e.args = (f"{e.args[0]} (after {len(got)} of {n} commands)",)
            raise
        return got

    def no_command_for(self, duration):
        """None if no command arrives within `duration`, else the command."""
        try:
            return self.commands.get(timeout=duration)
        except queue.Empty:
            return None

    def result(self, command_id, xid, branch_id, action, outcome, message=""):
        ps = self.pb.participant_service
        r = ps.BranchResult(command_id=command_id, xid=xid,
                            branch_id=branch_id, action=action,
                            outcome=outcome, message=message)
        self.send(ps.ParticipantMessage(result=r))

    def answer(self, command, outcome=None, message=""):
        """Echoes the command's identity with an outcome (DONE by default)."""
        ps = self.pb.participant_service
        if outcome is None:
            outcome = ps.COMMAND_OUTCOME_DONE
        self.result(command.command_id, command.xid, command.branch_id,
                    command.action, outcome, message)


class RawPipeline(_Stream):
    """A caller's Pipeline stream; results are collected by call id."""

    def __init__(self, coordinator, channel=None, label="pipeline"):
        self.pb = coordinator.pb
        self.results = {}
        self.replies = 0
        self._lock = threading.Lock()
        super().__init__(channel or coordinator.channel,
                         "/baton.v1.TransactionService/Pipeline",
                         self.pb.transaction_service.PipelineReply.FromString,
                         label)

    def on_message(self, message):
        with self._lock:
            self.replies += 1
            for r in message.results:
                self.results[r.call_id] = r
        super().on_message(message)

    def call_all(self, calls, timeout=20.0):
        """Sends the calls in one PipelineRequest; waits for every result."""
        ts = self.pb.transaction_service
        self.send(ts.PipelineRequest(calls=calls))
        ids = {c.call_id for c in calls}

        def done():
            with self._lock:
                if ids <= self.results.keys():
                    return True
            self.ensure_open()
            return False

        wait_for(done, timeout, f"{len(ids)} pipeline results")
        with self._lock:
            return [self.results[c.call_id] for c in calls]
