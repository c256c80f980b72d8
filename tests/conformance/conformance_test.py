#!/usr/bin/python3
"""Conformance suite of batond's wire contract (proto/baton/v1).

Plays both the caller and the participant with plain gRPC in Python, as a
service written in another language would, without the C++ SDK.

  /usr/bin/python3 tests/conformance/conformance_test.py \
      --bin-dir build/bin --proto-dir proto [unittest args, e.g. -v or -k sizes]

Needs Debian's python3-grpcio, python3-protobuf and protobuf-compiler-grpc.
Every test starts its own batond (they start in tens of milliseconds), so
tests cannot disturb one another and each can pick its flags.
"""

import argparse
import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
# Nothing but sources belongs in the repository: no __pycache__ beside them.
sys.dont_write_bytecode = True

import grpc  # noqa: E402

import harness  # noqa: E402
from harness import (CALL_TIMEOUT_S, Coordinator, RawParticipant,  # noqa: E402
                     RawPipeline, assert_stays, has_field, wait_for)

Code = grpc.StatusCode
GARBAGE = b"\xff\xff\xff\xff"


def _append_logs(error, test):
    """Adds the tails of the test's batond logs to a failure's message."""
    logs = test.log_tails()
    if logs and error.args:
        error.args = (f"{error.args[0]}\n{logs}",) + error.args[1:]
    elif logs:
        error.args = (logs,)


def _with_logs(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except unittest.SkipTest:
            raise
        except AssertionError as e:
            _append_logs(e, self)
            raise
        except grpc.RpcError as e:
            # An unexpected status is a finding about batond, not a crash of
            # the suite: report it as a failure with what batond said.
            raise AssertionError(
                f"unexpected RPC error {e.code()}: {e.details()!r}\n"
                f"{self.log_tails()}") from e
    return wrapper


class BatonTestCase(unittest.TestCase):
    """Starts one batond per test with the class's flags.

    With shared_coordinator, one batond serves the whole class instead: for
    tests that only read what an expensive setup built.
    """

    coordinator_args = ()
    metrics = False
    shared_coordinator = False
    _shared = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Wrapping every test lets any failure (including wait_for timeouts
        # raised deep in the harness) carry the batond log tails.
        for name, value in list(vars(cls).items()):
            if name.startswith("test") and callable(value):
                setattr(cls, name, _with_logs(value))

    def setUp(self):
        self.pb = harness.load_stubs()
        self.ts = self.pb.transaction_service
        self.ty = self.pb.types
        self.ps = self.pb.participant_service
        self.adm = self.pb.admin_service
        self.sg = self.pb.saga
        self.coordinators = []
        cls = type(self)
        if not cls.shared_coordinator:
            self.c = self.start_coordinator(*self.coordinator_args,
                                            metrics=self.metrics)
            return
        if cls._shared is None:
            shared = Coordinator(*self.coordinator_args, metrics=self.metrics)
            cls.addClassCleanup(shared.stop)
            shared.start()
            cls._shared = shared
        self.c = cls._shared
        self.coordinators.append(self.c)

    def start_coordinator(self, *args, **kwargs):
        c = Coordinator(*args, **kwargs)
        self.coordinators.append(c)
        self.addCleanup(c.stop)
        return c.start()

    def log_tails(self):
        return "\n".join(c.log_tail() for c in self.coordinators)

    @contextlib.contextmanager
    def check(self, label, **params):
        """A subTest whose failure also carries the log tails."""
        with self.subTest(label, **params):
            try:
                yield
            except AssertionError as e:
                _append_logs(e, self)
                raise

    # -- calls --

    def begin(self, name="conformance", **kwargs):
        return self.c.tx.Begin(self.ts.BeginRequest(name=name, **kwargs),
                               timeout=CALL_TIMEOUT_S).xid

    def register(self, xid, resource, **kwargs):
        return self.c.tx.RegisterBranch(
            self.ts.RegisterBranchRequest(xid=xid, resource=resource, **kwargs),
            timeout=CALL_TIMEOUT_S).branch_id

    def report(self, xid, branch_id, outcome=None, error=""):
        if outcome is None:
            outcome = self.ty.PHASE_ONE_OUTCOME_PREPARED
        return self.c.tx.ReportBranch(
            self.ts.ReportBranchRequest(xid=xid, branch_id=branch_id,
                                        outcome=outcome, error=error),
            timeout=CALL_TIMEOUT_S).status

    def commit(self, xid, wait=False, **kwargs):
        return self.c.tx.Commit(
            self.ts.CommitRequest(xid=xid, wait=wait, **kwargs),
            timeout=CALL_TIMEOUT_S)

    def prepared_transaction(self, resources, protocol=None, data=None):
        """An open transaction with one PREPARED branch per resource."""
        kwargs = {"protocol": protocol} if protocol else {}
        xid = self.begin(**kwargs)
        branches = []
        for i, r in enumerate(resources):
            extra = {"application_data": data[i]} if data else {}
            b = self.register(xid, r, **extra)
            self.report(xid, b)
            branches.append(b)
        return xid, branches

    def committing_transaction(self, resources):
        xid, branches = self.prepared_transaction(resources)
        self.assertEqual(self.commit(xid).status,
                         self.ty.GLOBAL_STATUS_COMMITTING)
        return xid, branches

    def register_many(self, xid, resource, count, data=lambda i: b""):
        """Registers `count` branches at once, so one sync covers many."""
        futures = [self.c.tx.RegisterBranch.future(
            self.ts.RegisterBranchRequest(xid=xid, resource=resource,
                                          application_data=data(i)),
            timeout=60) for i in range(count)]
        return [f.result().branch_id for f in futures]

    def report_many(self, xid, branch_ids):
        futures = [self.c.tx.ReportBranch.future(
            self.ts.ReportBranchRequest(
                xid=xid, branch_id=b,
                outcome=self.ty.PHASE_ONE_OUTCOME_PREPARED),
            timeout=60) for b in branch_ids]
        for f in futures:
            f.result()

    def participant(self, resources, label="participant", channel=None,
                    wait_for_ready=False, **hello):
        p = RawParticipant(self.c, channel=channel, label=label,
                           wait_for_ready=wait_for_ready)
        self.addCleanup(p.close)
        return p.hello(resources, **hello)

    def branch(self, xid, branch_id):
        for b in self.c.get(xid).branches:
            if b.branch_id == branch_id:
                return b
        self.fail(f"{xid} has no branch {branch_id}")

    # -- assertions --

    def assertEnded(self, what, code, details, expected, contains=()):
        """Checks a call's final status: code, a message, and what it names."""
        details = details or ""
        if code != expected:
            self.fail(f"{what}: expected {expected.name}, got "
                      f"{code.name if code else code} with message {details!r}")
        if not details.strip():
            self.fail(f"{what}: {expected.name} with an empty message")
        for needle in ([contains] if isinstance(contains, str) else contains):
            if needle.lower() not in details.lower():
                self.fail(f"{what}: the message {details!r} should name "
                          f"{needle!r}")

    def assertRpcError(self, code, call, request, contains=(), metadata=None,
                       what="the call"):
        """Asserts the call fails with `code` and a message naming `contains`."""
        try:
            response = call(request, timeout=CALL_TIMEOUT_S, metadata=metadata)
        except grpc.RpcError as e:
            error = e
        else:
            self.fail(f"{what}: expected {code.name}, the call succeeded with "
                      f"{response!r}")
        self.assertEnded(what, error.code(), error.details(), code, contains)
        return error

    def assertStreamEnds(self, stream, code, contains=()):
        got, details = stream.wait_end()
        self.assertEnded(f"{stream.label} stream", got, details, code, contains)

    def assertStatus(self, xid, status):
        t = self.c.get(xid)
        name = self.ty.GlobalStatus.Name
        self.assertEqual(t.status, status,
                         f"{xid} is {name(t.status)}, expected {name(status)}; "
                         f"reason {t.reason!r}")
        return t

    def assertBranches(self, xid, status):
        t = self.c.get(xid)
        name = self.ty.BranchStatus.Name
        self.assertEqual([name(b.status) for b in t.branches],
                         [name(status)] * len(t.branches),
                         f"branch statuses of {xid}")
        return t

    def assertCommand(self, command, xid, branch_id, action, type_=None):
        name = self.ps.BranchAction.Name
        self.assertEqual((command.xid, command.branch_id, name(command.action)),
                         (xid, branch_id, name(action)),
                         f"unexpected command {command}")
        if type_ is not None:
            self.assertEqual(self.ty.BranchType.Name(command.type),
                             self.ty.BranchType.Name(type_))

    def by_branch(self, commands):
        return {c.branch_id: c for c in commands}


# ---------------------------------------------------------------------------
# A. Two-phase commit


class TwoPhaseCommitTest(BatonTestCase):

    def test_commit_with_two_prepared_branches_commits_every_branch(self):
        ty, ps = self.ty, self.ps
        p = self.participant(["acct-a", "acct-b"])
        xid = self.begin(name="transfer")
        b1 = self.register(xid, "acct-a", application_data=b"debit 30",
                           instance_id="i-a")
        b2 = self.register(xid, "acct-b", application_data=b"credit 30",
                           instance_id="i-b")
        self.assertNotEqual(b1, b2)
        self.assertEqual(self.report(xid, b1), ty.BRANCH_STATUS_PREPARED)
        self.assertEqual(self.report(xid, b2), ty.BRANCH_STATUS_PREPARED)

        commit = self.c.tx.Commit.future(
            self.ts.CommitRequest(xid=xid, wait=True), timeout=CALL_TIMEOUT_S)
        got = self.by_branch(p.next_commands(2))
        self.assertEqual(set(got), {b1, b2})
        for b, resource, data in [(b1, "acct-a", b"debit 30"),
                                  (b2, "acct-b", b"credit 30")]:
            cmd = got[b]
            # Unspecified at registration, the type is the protocol's: XA.
            self.assertCommand(cmd, xid, b, ps.BRANCH_ACTION_COMMIT,
                               ty.BRANCH_TYPE_XA)
            self.assertEqual(cmd.resource, resource)
            self.assertEqual(cmd.application_data, data)
            self.assertEqual(cmd.attempt, 1)
            self.assertNotEqual(cmd.command_id, 0)
            p.answer(cmd)
        self.assertEqual(commit.result().status, ty.GLOBAL_STATUS_COMMITTED)
        t = self.assertStatus(xid, ty.GLOBAL_STATUS_COMMITTED)
        self.assertBranches(xid, ty.BRANCH_STATUS_COMMITTED)
        self.assertEqual([b.type for b in t.branches], [ty.BRANCH_TYPE_XA] * 2)
        self.assertEqual(t.protocol, ty.PROTOCOL_TWO_PHASE)
        self.assertEqual(t.name, "transfer")
        self.assertGreater(t.finished_unix_ms, 0)

    def test_failed_branch_turns_commit_into_rollback_of_every_branch(self):
        ty, ps = self.ty, self.ps
        p = self.participant(["acct-a", "acct-b"])
        xid = self.begin()
        b1 = self.register(xid, "acct-a")
        b2 = self.register(xid, "acct-b")
        self.report(xid, b1)
        self.assertEqual(
            self.report(xid, b2, ty.PHASE_ONE_OUTCOME_FAILED, "insufficient funds"),
            ty.BRANCH_STATUS_PREPARE_FAILED)

        commit = self.c.tx.Commit.future(
            self.ts.CommitRequest(xid=xid, wait=True), timeout=CALL_TIMEOUT_S)
        got = self.by_branch(p.next_commands(2))
        self.assertEqual(set(got), {b1, b2})
        # With wait, ABORTED too comes only once the rollback finished.
        self.assertFalse(commit.done(), "ABORTED came before the rollback")
        for b in (b1, b2):
            self.assertCommand(got[b], xid, b, ps.BRANCH_ACTION_ROLLBACK)
            p.answer(got[b])
        with self.assertRaises(grpc.RpcError) as raised:
            commit.result()
        self.assertEqual(raised.exception.code(), Code.ABORTED,
                         raised.exception.details())
        self.assertIn(str(b2), raised.exception.details())
        t = self.c.get(xid)
        self.assertEqual(t.status, ty.GLOBAL_STATUS_ROLLED_BACK)
        self.assertTrue(t.reason, "a rollback carries a reason")
        self.assertEqual(self.branch(xid, b1).status,
                         ty.BRANCH_STATUS_ROLLED_BACK)
        self.assertEqual(self.branch(xid, b2).phase_one_error,
                         "insufficient funds")


# ---------------------------------------------------------------------------
# B. TCC


class TccTest(BatonTestCase):

    def test_confirm_is_a_commit_command_carrying_the_action_context(self):
        ty, ps = self.ty, self.ps
        p = self.participant(["orders", "stock"])
        xid = self.begin(protocol=ty.PROTOCOL_TCC)
        ctx = ty.ActionContext(values={"sku": b"A-1", "qty": b"2"})
        data = ctx.SerializeToString()
        b1 = self.register(xid, "orders", application_data=data)
        b2 = self.register(xid, "stock", application_data=b"reserve 2")
        self.report(xid, b1)
        self.report(xid, b2)
        t = self.c.get(xid)
        self.assertEqual(t.protocol, ty.PROTOCOL_TCC)
        self.assertEqual([b.type for b in t.branches], [ty.BRANCH_TYPE_TCC] * 2)

        commit = self.c.tx.Commit.future(
            self.ts.CommitRequest(xid=xid, wait=True), timeout=CALL_TIMEOUT_S)
        got = self.by_branch(p.next_commands(2))
        for b, expected in [(b1, data), (b2, b"reserve 2")]:
            self.assertCommand(got[b], xid, b, ps.BRANCH_ACTION_COMMIT,
                               ty.BRANCH_TYPE_TCC)
            self.assertEqual(got[b].application_data, expected)
            p.answer(got[b])
        self.assertEqual(
            ty.ActionContext.FromString(got[b1].application_data).values["sku"],
            b"A-1")
        self.assertEqual(commit.result().status, ty.GLOBAL_STATUS_COMMITTED)
        self.assertBranches(xid, ty.BRANCH_STATUS_COMMITTED)

    def test_cancel_is_a_rollback_command_for_every_branch(self):
        ty, ps = self.ty, self.ps
        p = self.participant(["orders", "stock"])
        xid = self.begin(protocol=ty.PROTOCOL_TCC)
        b1 = self.register(xid, "orders", application_data=b"order 7")
        # Its try may have run without reporting: it is cancelled too.
        b2 = self.register(xid, "stock", application_data=b"reserve 2")
        self.report(xid, b1)

        rollback = self.c.tx.Rollback.future(
            self.ts.RollbackRequest(xid=xid, reason="customer left", wait=True),
            timeout=CALL_TIMEOUT_S)
        got = self.by_branch(p.next_commands(2))
        for b, expected in [(b1, b"order 7"), (b2, b"reserve 2")]:
            self.assertCommand(got[b], xid, b, ps.BRANCH_ACTION_ROLLBACK,
                               ty.BRANCH_TYPE_TCC)
            self.assertEqual(got[b].application_data, expected)
            p.answer(got[b])
        self.assertEqual(rollback.result().status, ty.GLOBAL_STATUS_ROLLED_BACK)
        t = self.assertStatus(xid, ty.GLOBAL_STATUS_ROLLED_BACK)
        self.assertEqual(t.reason, "customer left")
        self.assertBranches(xid, ty.BRANCH_STATUS_ROLLED_BACK)


# ---------------------------------------------------------------------------
# C. Sagas


class SagaTest(BatonTestCase):

    def submit_two_steps(self, resource="trips"):
        sg = self.sg
        definition = sg.SagaDefinition(steps=[
            sg.SagaStep(name="flight",
                        action=sg.SagaCall(resource=resource, payload=b"book LH-400"),
                        compensation=sg.SagaCall(payload=b"cancel LH-400")),
            sg.SagaStep(name="hotel", depends_on=["flight"],
                        action=sg.SagaCall(resource=resource, payload=b"book grand"),
                        compensation=sg.SagaCall(payload=b"cancel grand")),
        ])
        response = self.c.tx.SubmitSaga(
            self.ts.SubmitSagaRequest(name="trip", definition=definition),
            timeout=CALL_TIMEOUT_S)
        self.assertTrue(response.xid)
        return response.xid

    def test_saga_steps_arrive_as_branch_commands_and_commit(self):
        ty, ps = self.ty, self.ps
        p = self.participant(["trips"])
        xid = self.submit_two_steps()
        first = p.next_command()
        self.assertCommand(first, xid, 1, ps.BRANCH_ACTION_COMMIT,
                           ty.BRANCH_TYPE_SAGA)
        self.assertEqual(first.resource, "trips")
        self.assertEqual(first.application_data, b"book LH-400")
        # The second step depends on the first: nothing before it succeeded.
        self.assertTrue(p.commands.empty(), "hotel sent before flight succeeded")
        p.answer(first)
        second = p.next_command()
        self.assertCommand(second, xid, 2, ps.BRANCH_ACTION_COMMIT,
                           ty.BRANCH_TYPE_SAGA)
        self.assertEqual(second.application_data, b"book grand")
        p.answer(second)
        self.c.wait_status(xid, ty.GLOBAL_STATUS_COMMITTED)
        t = self.c.get(xid)
        self.assertEqual(t.protocol, ty.PROTOCOL_SAGA)
        self.assertEqual([s.status for s in t.saga.steps],
                         [self.sg.STEP_STATUS_SUCCEEDED] * 2)

    def test_failed_step_compensates_the_steps_that_ran_newest_first(self):
        ty, ps = self.ty, self.ps
        p = self.participant(["trips"])
        xid = self.submit_two_steps()
        p.answer(p.next_command())
        second = p.next_command()
        self.assertCommand(second, xid, 2, ps.BRANCH_ACTION_COMMIT)
        p.answer(second, ps.COMMAND_OUTCOME_FAILED, "no rooms left")
        # The failed step was sent, so it may have run: it is compensated
        # first, and only then the step it depends on.
        undo_hotel = p.next_command()
        self.assertCommand(undo_hotel, xid, 2, ps.BRANCH_ACTION_ROLLBACK,
                           ty.BRANCH_TYPE_SAGA)
        self.assertEqual(undo_hotel.application_data, b"cancel grand")
        self.assertTrue(p.commands.empty(),
                        "flight compensated before hotel's compensation ended")
        p.answer(undo_hotel)
        undo_flight = p.next_command()
        self.assertCommand(undo_flight, xid, 1, ps.BRANCH_ACTION_ROLLBACK,
                           ty.BRANCH_TYPE_SAGA)
        self.assertEqual(undo_flight.application_data, b"cancel LH-400")
        p.answer(undo_flight)
        self.c.wait_status(xid, ty.GLOBAL_STATUS_ROLLED_BACK)
        t = self.c.get(xid)
        self.assertIn("hotel", t.reason)
        self.assertIn("no rooms left", t.reason)
        self.assertEqual([s.status for s in t.saga.steps],
                         [self.sg.STEP_STATUS_COMPENSATED] * 2)


# ---------------------------------------------------------------------------
# D. Idempotency and retries


class IdempotencyTest(BatonTestCase):

    def test_begin_twice_with_one_request_id_returns_one_xid(self):
        first = self.begin(request_id="order-1")
        self.assertEqual(self.begin(request_id="order-1"), first)
        self.assertNotEqual(self.begin(request_id="order-2"), first)
        self.assertEqual(self.c.get(first).request_id, "order-1")

    def test_register_twice_with_one_request_id_returns_one_branch(self):
        xid = self.begin()
        first = self.register(xid, "r", request_id="leg-1")
        self.assertEqual(self.register(xid, "r", request_id="leg-1"), first)
        self.assertNotEqual(self.register(xid, "r", request_id="leg-2"), first)
        self.assertEqual(len(self.c.get(xid).branches), 2)

    def test_commit_repeated_answers_ok(self):
        ty = self.ty
        p = self.participant(["r"])
        xid, (b,) = self.prepared_transaction(["r"])
        self.assertEqual(self.commit(xid).status, ty.GLOBAL_STATUS_COMMITTING)
        self.assertIn(self.commit(xid).status,
                      (ty.GLOBAL_STATUS_COMMITTING, ty.GLOBAL_STATUS_COMMITTED))
        p.answer(p.next_command())
        self.c.wait_status(xid, ty.GLOBAL_STATUS_COMMITTED)
        self.assertEqual(self.commit(xid).status, ty.GLOBAL_STATUS_COMMITTED)
        self.assertEqual(self.commit(xid, wait=True).status,
                         ty.GLOBAL_STATUS_COMMITTED)

    def test_report_prepared_repeated_while_open_answers_ok(self):
        xid = self.begin()
        b = self.register(xid, "r")
        self.assertEqual(self.report(xid, b), self.ty.BRANCH_STATUS_PREPARED)
        self.assertEqual(self.report(xid, b), self.ty.BRANCH_STATUS_PREPARED)

    def test_report_prepared_repeated_after_commit_answers_ok(self):
        ty = self.ty
        p = self.participant(["r"])
        xid, (b,) = self.prepared_transaction(["r"])
        self.commit(xid)
        p.answer(p.next_command())
        self.c.wait_status(xid, ty.GLOBAL_STATUS_COMMITTED)
        # The participant's retry of a report whose answer it lost.
        error = None
        try:
            status = self.report(xid, b)
        except grpc.RpcError as e:
            error = f"{e.code().name} {e.details()!r}"
        if error:
            self.fail(f"repeated ReportBranch(PREPARED) after COMMITTED: "
                      f"expected OK, got {error}")
        self.assertIn(ty.BranchStatus.Name(status),
                      ("BRANCH_STATUS_PREPARED", "BRANCH_STATUS_COMMITTED"))
        self.assertStatus(xid, ty.GLOBAL_STATUS_COMMITTED)

    def test_conflicting_report_after_prepared_is_failed_precondition(self):
        xid = self.begin()
        b = self.register(xid, "r")
        self.report(xid, b)
        self.assertRpcError(
            Code.FAILED_PRECONDITION, self.c.tx.ReportBranch,
            self.ts.ReportBranchRequest(
                xid=xid, branch_id=b, outcome=self.ty.PHASE_ONE_OUTCOME_FAILED),
            contains=[str(b)], what="ReportBranch(FAILED) after PREPARED")
        self.assertEqual(self.branch(xid, b).status,
                         self.ty.BRANCH_STATUS_PREPARED)

    def saga_request(self, request_id):
        sg = self.sg
        return self.ts.SubmitSagaRequest(
            name="keyed", request_id=request_id,
            definition=sg.SagaDefinition(steps=[sg.SagaStep(
                name="s", action=sg.SagaCall(resource="nobody", payload=b"p"))]))

    def test_saga_request_id_refuses_a_begin_with_the_same_key(self):
        self.c.tx.SubmitSaga(self.saga_request("k-1"), timeout=CALL_TIMEOUT_S)
        self.assertRpcError(Code.ALREADY_EXISTS, self.c.tx.Begin,
                            self.ts.BeginRequest(name="keyed", request_id="k-1"),
                            contains=["k-1"],
                            what="Begin with a saga's request_id")

    def test_tcc_request_id_refuses_a_two_phase_begin_with_the_same_key(self):
        self.begin(name="keyed", protocol=self.ty.PROTOCOL_TCC, request_id="k-2")
        self.assertRpcError(
            Code.ALREADY_EXISTS, self.c.tx.Begin,
            self.ts.BeginRequest(name="keyed", request_id="k-2",
                                 protocol=self.ty.PROTOCOL_TWO_PHASE),
            contains=["k-2"], what="2PC Begin with a TCC transaction's request_id")

    def test_begin_request_id_refuses_a_saga_with_the_same_key(self):
        self.begin(name="keyed", request_id="k-3")
        self.assertRpcError(Code.ALREADY_EXISTS, self.c.tx.SubmitSaga,
                            self.saga_request("k-3"), contains=["k-3"],
                            what="SubmitSaga with a 2PC transaction's request_id")


# ---------------------------------------------------------------------------
# E. Bad input


class BadInputTest(BatonTestCase):

    def xid_requests(self, xid):
        ts, ty = self.ts, self.ty
        tx = self.c.tx
        return [
            ("Commit", tx.Commit, ts.CommitRequest(xid=xid)),
            ("Rollback", tx.Rollback, ts.RollbackRequest(xid=xid)),
            ("GetTransaction", tx.GetTransaction, ts.GetTransactionRequest(xid=xid)),
            ("RegisterBranch", tx.RegisterBranch,
             ts.RegisterBranchRequest(xid=xid, resource="r")),
            ("ReportBranch", tx.ReportBranch,
             ts.ReportBranchRequest(xid=xid, branch_id=1,
                                    outcome=ty.PHASE_ONE_OUTCOME_PREPARED)),
        ]

    def test_empty_xid_is_invalid_argument_on_every_method(self):
        for name, call, request in self.xid_requests(""):
            with self.check(name):
                self.assertRpcError(Code.INVALID_ARGUMENT, call, request,
                                    contains=["xid"], what=f"{name}(xid='')")

    def test_malformed_xid_is_invalid_argument_on_every_method(self):
        for name, call, request in self.xid_requests("banana"):
            with self.check(name):
                self.assertRpcError(Code.INVALID_ARGUMENT, call, request,
                                    contains=["banana"],
                                    what=f"{name}(xid='banana')")

    def test_unknown_xid_is_not_found_on_every_method(self):
        for name, call, request in self.xid_requests("0-99-1"):
            with self.check(name):
                self.assertRpcError(Code.NOT_FOUND, call, request,
                                    contains=["0-99-1"],
                                    what=f"{name}(xid='0-99-1')")

    def test_report_for_an_unknown_branch_is_not_found(self):
        xid = self.begin()
        self.register(xid, "r")
        self.assertRpcError(
            Code.NOT_FOUND, self.c.tx.ReportBranch,
            self.ts.ReportBranchRequest(
                xid=xid, branch_id=42, outcome=self.ty.PHASE_ONE_OUTCOME_PREPARED),
            contains=["42"], what="ReportBranch(branch_id=42)")

    def test_begin_with_empty_name_is_invalid_argument(self):
        self.assertRpcError(Code.INVALID_ARGUMENT, self.c.tx.Begin,
                            self.ts.BeginRequest(name=""), contains=["name"],
                            what="Begin(name='')")

    def test_begin_with_timeout_over_24_hours_is_invalid_argument(self):
        over = 24 * 3600 * 1000 + 1
        self.assertRpcError(Code.INVALID_ARGUMENT, self.c.tx.Begin,
                            self.ts.BeginRequest(name="t", timeout_ms=over),
                            contains=["timeout_ms"], what="Begin(24 h + 1 ms)")
        self.assertTrue(self.begin(timeout_ms=over - 1))

    def test_the_record_keeps_its_timeout_and_a_deadline_to_match(self):
        response = self.c.tx.Begin(
            self.ts.BeginRequest(name="t", timeout_ms=5000),
            timeout=CALL_TIMEOUT_S)
        record = self.c.get(response.xid)
        self.assertEqual(record.timeout_ms, 5000)
        self.assertEqual(record.deadline_unix_ms - record.begun_unix_ms, 5000)
        self.assertEqual(response.deadline_unix_ms, record.deadline_unix_ms)
        # Instants read as the wall clock: begun within a minute of now.
        self.assertLess(abs(record.begun_unix_ms - time.time() * 1000), 60000)
        # A zero timeout takes the coordinator's default, and says which.
        default = self.c.get(self.begin())
        self.assertGreater(default.timeout_ms, 0)

    def test_application_data_over_64_kib_is_invalid_argument(self):
        xid = self.begin()
        self.assertTrue(self.register(xid, "r", application_data=b"x" * 65536))
        self.assertRpcError(
            Code.INVALID_ARGUMENT, self.c.tx.RegisterBranch,
            self.ts.RegisterBranchRequest(xid=xid, resource="r",
                                          application_data=b"x" * (65 * 1024)),
            contains=["application_data"],
            what="RegisterBranch(65 KiB of application_data)")

    def test_branch_past_1000_is_resource_exhausted(self):
        xid = self.begin()
        ids = self.register_many(xid, "r", 1000)
        self.assertEqual(len(set(ids)), 1000)
        self.assertRpcError(Code.RESOURCE_EXHAUSTED, self.c.tx.RegisterBranch,
                            self.ts.RegisterBranchRequest(xid=xid, resource="r"),
                            contains=["1000"], what="RegisterBranch #1001")

    def test_begin_with_saga_protocol_names_submit_saga(self):
        self.assertRpcError(
            Code.INVALID_ARGUMENT, self.c.tx.Begin,
            self.ts.BeginRequest(name="t", protocol=self.ty.PROTOCOL_SAGA),
            contains=["SubmitSaga"], what="Begin(PROTOCOL_SAGA)")

    def test_commit_of_a_saga_is_failed_precondition(self):
        sg = self.sg
        xid = self.c.tx.SubmitSaga(self.ts.SubmitSagaRequest(
            name="trip", definition=sg.SagaDefinition(steps=[sg.SagaStep(
                name="s", action=sg.SagaCall(resource="nobody"))])),
            timeout=CALL_TIMEOUT_S).xid
        self.assertRpcError(Code.FAILED_PRECONDITION, self.c.tx.Commit,
                            self.ts.CommitRequest(xid=xid), contains=["saga"],
                            what="Commit of a saga")

    def unary_methods(self, module, service):
        descriptor = module.DESCRIPTOR.services_by_name[service]
        return [m.name for m in descriptor.methods
                if not m.client_streaming and not m.server_streaming]

    def check_garbage_unary(self, service, names, metadata=None):
        self.assertTrue(names)
        for name in names:
            with self.check(name):
                self.assertRpcError(
                    Code.INVALID_ARGUMENT,
                    self.c.raw_unary(f"/baton.v1.{service}/{name}"), GARBAGE,
                    metadata=metadata, what=f"{service}.{name}(<garbage bytes>)")

    def test_garbage_bytes_on_every_unary_transaction_method(self):
        self.check_garbage_unary(
            "TransactionService",
            self.unary_methods(self.pb.transaction_service, "TransactionService"))

    def test_garbage_bytes_on_every_unary_admin_method(self):
        # With the right token, so that only the body is at fault.
        self.check_garbage_unary(
            "AdminService",
            self.unary_methods(self.pb.admin_service, "AdminService"),
            metadata=self.c.admin_md)

    def test_garbage_bytes_on_attach_end_the_stream_with_invalid_argument(self):
        with self.check("as the first message"):
            p = RawParticipant(self.c, label="garbage-first")
            self.addCleanup(p.close)
            p.send_bytes(GARBAGE)
            self.assertStreamEnds(p, Code.INVALID_ARGUMENT)
        with self.check("after the Hello"):
            p = self.participant(["r"], label="garbage-later")
            p.send_bytes(GARBAGE)
            self.assertStreamEnds(p, Code.INVALID_ARGUMENT)

    def test_garbage_bytes_on_pipeline_end_the_stream_with_invalid_argument(self):
        with self.check("as the first message"):
            s = RawPipeline(self.c, label="garbage-first")
            self.addCleanup(s.close)
            s.send_bytes(GARBAGE)
            self.assertStreamEnds(s, Code.INVALID_ARGUMENT)
        with self.check("after a valid call"):
            s = RawPipeline(self.c, label="garbage-later")
            self.addCleanup(s.close)
            (result,) = s.call_all([self.ts.PipelineCall(
                call_id=1, begin=self.ts.BeginRequest(name="t"))])
            self.assertEqual(result.code, 0, result.message)
            s.send_bytes(GARBAGE)
            self.assertStreamEnds(s, Code.INVALID_ARGUMENT)


# ---------------------------------------------------------------------------
# F. The Attach protocol


class AttachProtocolTest(BatonTestCase):

    def test_first_message_not_a_hello_is_failed_precondition(self):
        ps = self.ps
        p = RawParticipant(self.c, label="no-hello")
        self.addCleanup(p.close)
        p.send(ps.ParticipantMessage(result=ps.BranchResult(
            command_id=1, xid="0-1-1", branch_id=1,
            action=ps.BRANCH_ACTION_COMMIT, outcome=ps.COMMAND_OUTCOME_DONE)))
        self.assertStreamEnds(p, Code.FAILED_PRECONDITION, contains="Hello")
        self.assertFalse(p.welcome.is_set())

    def test_hello_without_resources_is_invalid_argument(self):
        p = RawParticipant(self.c, label="no-resources")
        self.addCleanup(p.close)
        p.hello([], wait_welcome=False)
        self.assertStreamEnds(p, Code.INVALID_ARGUMENT, contains="resources")

    def test_second_hello_is_ignored_and_the_stream_keeps_working(self):
        ty = self.ty
        p = self.participant(["r"])
        p.hello(["r", "s"], instance_id="again", wait_welcome=False)
        xid, (b,) = self.committing_transaction(["r"])
        cmd = p.next_command()
        self.assertCommand(cmd, xid, b, self.ps.BRANCH_ACTION_COMMIT)
        p.answer(cmd)
        self.c.wait_status(xid, ty.GLOBAL_STATUS_COMMITTED)
        p.ensure_open()
        welcomes = [m for m in p.messages if m.WhichOneof("kind") == "welcome"]
        self.assertEqual(len(welcomes), 1, "a second Hello got a second Welcome")


# ---------------------------------------------------------------------------
# G. Misbehaving participants


class MisbehavingParticipantTest(BatonTestCase):
    metrics = True
    IGNORED_METRIC = "baton_participant_results_ignored_total"

    def ignored(self):
        return self.c.metric(self.IGNORED_METRIC) or 0

    def wait_ignored(self, count):
        """Waits until batond counted `count` ignored results in all.

        A stream's messages are handled in order, so once the count is
        reached the results under test were handled: the checks after it
        observe their effect, not the time it takes to get there.
        """
        wait_for(lambda: self.ignored() >= count, 5,
                 lambda: f"{self.IGNORED_METRIC} >= {count} "
                         f"(is {self.ignored()})")

    def branch_states(self, xid):
        """(status, attempts) of every branch: what a result could change."""
        return {b.branch_id: (b.status, b.attempts)
                for b in self.c.get(xid).branches}

    def stays_committing(self, xid, branches, duration=1.0):
        """Asserts nothing settles: still COMMITTING, branches as given.

        `branches` must be taken before the results under test were sent,
        or a result applied at once would hide in the snapshot.
        """
        ty = self.ty

        def unchanged():
            t = self.c.get(xid)
            if t.status != ty.GLOBAL_STATUS_COMMITTING:
                raise AssertionError(
                    f"{xid} changed: now {ty.GlobalStatus.Name(t.status)}")
            for b in t.branches:
                was = branches.get(b.branch_id)
                if was is not None and (b.status, b.attempts) != was:
                    raise AssertionError(
                        f"{xid} changed: branch {b.branch_id} went from "
                        f"{ty.BranchStatus.Name(was[0])}, {was[1]} attempt(s) "
                        f"to {ty.BranchStatus.Name(b.status)}, {b.attempts}")
            return True

        assert_stays(unchanged, duration, f"{xid} unchanged")

    FOREIGN_COMMAND_IDS = (987654321, 0)

    def foreign_stream(self):
        """A stream serving another resource: never sent a command for r2."""
        return self.participant(["other"], label="stranger")

    def send_foreign_result(self, stream, xid, branch_id, command_id):
        ps = self.ps
        stream.result(command_id, xid, branch_id, ps.BRANCH_ACTION_COMMIT,
                      ps.COMMAND_OUTCOME_DONE)

    def test_results_answering_no_command_sent_are_ignored(self):
        ty = self.ty
        xid, (b,) = self.committing_transaction(["r2"])
        before = self.branch_states(xid)
        stranger = self.foreign_stream()
        for command_id in self.FOREIGN_COMMAND_IDS:
            # One at a time, so a failure says which result was applied.
            counted = self.ignored()
            self.send_foreign_result(stranger, xid, b, command_id)
            try:
                self.wait_ignored(counted + 1)
                self.stays_committing(xid, before, duration=0.2)
            except AssertionError as e:
                raise AssertionError(f"after a foreign result with command_id "
                                     f"{command_id}: {e}") from None
        p = self.participant(["r2"])
        cmd = p.next_command()
        self.assertCommand(cmd, xid, b, self.ps.BRANCH_ACTION_COMMIT)
        p.answer(cmd)
        self.c.wait_status(xid, ty.GLOBAL_STATUS_COMMITTED)

    def test_result_with_a_wrong_branch_or_action_is_ignored(self):
        ty, ps = self.ty, self.ps
        p = self.participant(["r"])
        xid, (b1, b2) = self.committing_transaction(["r", "r"])
        got = self.by_branch(p.next_commands(2))
        c1 = got[b1]
        before = self.branch_states(xid)
        with self.check("right command_id, wrong branch_id"):
            counted = self.ignored()
            p.result(c1.command_id, xid, b2, ps.BRANCH_ACTION_COMMIT,
                     ps.COMMAND_OUTCOME_DONE)
            self.wait_ignored(counted + 1)
            self.stays_committing(xid, before, duration=0.2)
        before = self.branch_states(xid)
        with self.check("right command_id, wrong action"):
            counted = self.ignored()
            p.result(c1.command_id, xid, b1, ps.BRANCH_ACTION_ROLLBACK,
                     ps.COMMAND_OUTCOME_DONE)
            self.wait_ignored(counted + 1)
            self.stays_committing(xid, before, duration=0.2)
        p.answer(got[b1])
        p.answer(got[b2])
        self.c.wait_status(xid, ty.GLOBAL_STATUS_COMMITTED)
        self.assertBranches(xid, ty.BRANCH_STATUS_COMMITTED)

    def test_duplicate_results_for_an_applied_command_change_nothing(self):
        ty, ps = self.ty, self.ps
        p = self.participant(["r"])
        xid, (b1, b2) = self.committing_transaction(["r", "r"])
        got = self.by_branch(p.next_commands(2))
        p.answer(got[b1])
        wait_for(lambda: self.branch(xid, b1).status == ty.BRANCH_STATUS_COMMITTED,
                 what=f"branch {b1} COMMITTED")
        before = self.branch_states(xid)
        counted = self.ignored()
        p.answer(got[b1])
        p.answer(got[b1], ps.COMMAND_OUTCOME_FAILED, "late duplicate")
        self.wait_ignored(counted + 2)
        self.stays_committing(xid, before, duration=0.2)
        p.answer(got[b2])
        self.c.wait_status(xid, ty.GLOBAL_STATUS_COMMITTED)
        before = self.c.get(xid)
        counted = self.ignored()
        p.answer(got[b1])
        p.answer(got[b2], ps.COMMAND_OUTCOME_RETRY, "late duplicate")
        self.wait_ignored(counted + 2)
        assert_stays(lambda: self.c.get(xid) == before, 0.2,
                     f"{xid}'s record after duplicates")
        self.assertIsNone(p.no_command_for(0.3), "a duplicate caused a resend")

    def test_commands_are_redelivered_after_the_stream_drops(self):
        ty = self.ty
        first = self.participant(["r"], label="first")
        xid, (b,) = self.committing_transaction(["r"])
        lost = first.next_command()
        self.assertCommand(lost, xid, b, self.ps.BRANCH_ACTION_COMMIT)
        first.cancel()
        second = self.participant(["r"], label="second")
        again = second.next_command()
        self.assertCommand(again, xid, b, self.ps.BRANCH_ACTION_COMMIT)
        second.answer(again)
        self.c.wait_status(xid, ty.GLOBAL_STATUS_COMMITTED)

    def test_ignored_results_are_counted_in_metrics(self):
        before = self.c.metric(self.IGNORED_METRIC) or 0
        xid, (b,) = self.committing_transaction(["r2"])
        stranger = self.foreign_stream()
        for command_id in self.FOREIGN_COMMAND_IDS:
            self.send_foreign_result(stranger, xid, b, command_id)
        seen = []

        def counted():
            value = self.c.metric(self.IGNORED_METRIC)
            seen.append(value)
            return value is not None and value >= before + 2

        try:
            wait_for(counted, 3, f"{self.IGNORED_METRIC} >= {before + 2}")
        except AssertionError as e:
            if seen[-1] is None:
                e = f"GET /metrics has no {self.IGNORED_METRIC} at all"
            raise AssertionError(f"2 ignored results not counted: {e}") from None


class RetryOutcomeTest(BatonTestCase):
    coordinator_args = ("--retry-initial-ms", "50", "--retry-max-ms", "200")

    def test_retry_outcome_gets_the_command_again_with_a_growing_attempt(self):
        ty, ps = self.ty, self.ps
        p = self.participant(["r"])
        xid, (b,) = self.committing_transaction(["r"])
        attempts = []
        for i in range(2):
            cmd = p.next_command()
            self.assertCommand(cmd, xid, b, ps.BRANCH_ACTION_COMMIT)
            attempts.append(cmd.attempt)
            p.answer(cmd, ps.COMMAND_OUTCOME_RETRY, f"busy-{i}")
            wait_for(lambda: f"busy-{i}" in self.branch(xid, b).last_error,
                     what=f"last_error busy-{i}")
        cmd = p.next_command()
        attempts.append(cmd.attempt)
        self.assertEqual(attempts, [1, 2, 3])
        p.answer(cmd)
        self.c.wait_status(xid, ty.GLOBAL_STATUS_COMMITTED)
        self.assertGreaterEqual(self.branch(xid, b).attempts, 3)


class CommandTimeoutTest(BatonTestCase):
    coordinator_args = ("--retry-initial-ms", "50", "--retry-max-ms", "200",
                        "--command-timeout-ms", "500")

    def test_unanswered_command_is_sent_again_after_the_command_timeout(self):
        ty, ps = self.ty, self.ps
        p = self.participant(["r"])
        # The first send follows the decision, so the resend can come no
        # sooner than 500 ms after this, however loaded the machine is.
        before_commit = time.monotonic()
        xid, (b,) = self.committing_transaction(["r"])
        first = p.next_command()
        self.assertEqual(first.attempt, 1)
        again = p.next_command(timeout=10)
        waited = time.monotonic() - before_commit
        self.assertCommand(again, xid, b, ps.BRANCH_ACTION_COMMIT)
        self.assertEqual(again.attempt, 2)
        self.assertGreaterEqual(waited, 0.49,
                                "resent before the 500 ms command timeout")
        self.assertIn("no answer", self.branch(xid, b).last_error)
        p.answer(again)
        self.c.wait_status(xid, ty.GLOBAL_STATUS_COMMITTED)


# ---------------------------------------------------------------------------
# H. Message sizes seen by a client with gRPC's default limits (4 MiB)


class BigTransaction:
    """100 branches of 64 KiB on "r" (6.4 MiB in all), COMMITTING, unserved.

    Larger than gRPC's default 4 MiB receive limit, yet within every limit
    of batond's contract (64 KiB per branch, 8 MiB per transaction).
    """
    BRANCHES = 100
    DATA = 64 * 1024

    @classmethod
    def data(cls, i):
        return bytes([i % 251]) * cls.DATA

    def big_committing_transaction(self):
        xid = self.begin(name="big")
        ids = self.register_many(xid, "r", self.BRANCHES, data=self.data)
        self.report_many(xid, ids)
        self.assertEqual(self.commit(xid).status, self.ty.GLOBAL_STATUS_COMMITTING)
        return xid, ids

    def require_field(self, message_class, name, number):
        # A subTest, so the behaviour below is still checked and reported.
        with self.check(f"proto field {message_class.__name__}.{name}"):
            self.assertTrue(
                has_field(message_class, name, number),
                f"{message_class.DESCRIPTOR.full_name} has no field {name} = "
                f"{number} (the proto change has not landed)")

    def assertFitsDefaultClient(self, t):
        """A whole record, or one with application data left out and said so."""
        omitted = getattr(t, "application_data_omitted", None)
        self.assertIsNotNone(omitted,
                             "Transaction has no field application_data_omitted")
        self.assertEqual(len(t.branches), self.BRANCHES)
        if omitted:
            self.assertEqual([b.application_data for b in t.branches],
                             [b""] * self.BRANCHES,
                             "application_data_omitted, yet some data sent")
        else:
            self.assertEqual([len(b.application_data) for b in t.branches],
                             [self.DATA] * self.BRANCHES)


class CommandSizeTest(BigTransaction, BatonTestCase):

    def test_command_batches_fit_a_default_client(self):
        self.require_field(self.ps.Hello, "max_message_bytes", 5)
        ty = self.ty
        xid, ids = self.big_committing_transaction()
        # Its own channel with default limits, as a fresh service process;
        # max_message_bytes is left unset, which means 4 MiB.
        channel = self.c.new_channel()
        self.addCleanup(channel.close)
        p = self.participant(["r"], channel=channel, reads_command_batches=True)
        got = self.by_branch(p.next_commands(self.BRANCHES, timeout=30))
        self.assertEqual(sorted(got), sorted(ids))
        for i, b in enumerate(ids):
            self.assertEqual(got[b].application_data, self.data(i),
                             f"application_data of branch {b}")
        carrying = [m for m in p.messages if m.WhichOneof("kind") != "welcome"]
        self.assertGreaterEqual(len(carrying), 2, "6.4 MiB in one message")
        self.assertIsNone(p.parse_error)
        for b in ids:
            p.answer(got[b])
        self.c.wait_status(xid, ty.GLOBAL_STATUS_COMMITTED, timeout=20)
        p.ensure_open()


class ReadSizeTest(BigTransaction, BatonTestCase):
    # Both tests only read the one big transaction, which costs seconds to
    # build (every change rewrites its 6.4 MiB record).
    shared_coordinator = True
    _big = None

    def big(self):
        cls = type(self)
        if cls._big is None:
            cls._big = self.big_committing_transaction()
        return cls._big

    def test_get_transaction_fits_a_default_client(self):
        self.require_field(self.ts.GetTransactionRequest, "max_response_bytes", 2)
        self.require_field(self.ty.Transaction, "application_data_omitted", 17)
        xid, _ = self.big()
        error = None
        try:
            t = self.c.get(xid)
        except grpc.RpcError as e:
            error = f"{e.code().name} {e.details()!r}"
        if error:
            self.fail(f"GetTransaction of a 6.4 MiB record on a default "
                      f"client: {error}")
        self.assertFitsDefaultClient(t)

    def test_pipeline_replies_fit_a_default_client(self):
        self.require_field(self.ts.PipelineRequest, "max_reply_bytes", 2)
        xid, _ = self.big()
        s = RawPipeline(self.c, label="big-pipeline")
        self.addCleanup(s.close)
        calls = [self.ts.PipelineCall(
            call_id=i, get_transaction=self.ts.GetTransactionRequest(xid=xid))
            for i in range(1, 81)]
        try:
            results = s.call_all(calls, timeout=30)
        except AssertionError as e:
            raise AssertionError(f"80 GetTransaction calls of a 6.4 MiB record "
                                 f"on one Pipeline: {e}") from None
        for r in results:
            self.assertEqual(r.code, 0, f"call {r.call_id}: {r.message}")
            self.assertFitsDefaultClient(r.get_transaction.transaction)


# ---------------------------------------------------------------------------
# I. Admin


class AdminTest(BatonTestCase):

    def test_admin_calls_need_the_bearer_token(self):
        request = self.adm.GetStatsRequest()
        self.assertRpcError(Code.UNAUTHENTICATED, self.c.admin.GetStats, request,
                            what="GetStats without metadata")
        self.assertRpcError(Code.UNAUTHENTICATED, self.c.admin.GetStats, request,
                            metadata=(("authorization", "Bearer wrong"),),
                            what="GetStats with a wrong token")
        self.assertRpcError(Code.UNAUTHENTICATED, self.c.admin.GetStats, request,
                            metadata=(("authorization", self.c.token),),
                            what="GetStats with the token but no Bearer")
        stats = self.c.admin.GetStats(request, metadata=self.c.admin_md,
                                      timeout=CALL_TIMEOUT_S)
        self.assertEqual(stats.pid, self.c.proc.pid)

    def test_list_transactions_shows_the_unfinished_ones(self):
        ty = self.ty
        open_xid = self.begin(name="open")
        committing, _ = self.committing_transaction(["nobody"])
        finished = self.begin(name="finished")
        self.commit(finished, wait=True)
        self.c.wait_status(finished, ty.GLOBAL_STATUS_COMMITTED)
        listed = self.c.admin.ListTransactions(
            self.adm.ListTransactionsRequest(), metadata=self.c.admin_md,
            timeout=CALL_TIMEOUT_S)
        statuses = {t.xid: t.status for t in listed.transactions}
        self.assertEqual(statuses, {open_xid: ty.GLOBAL_STATUS_BEGUN,
                                    committing: ty.GLOBAL_STATUS_COMMITTING})
        stats = self.c.admin.GetStats(self.adm.GetStatsRequest(),
                                      metadata=self.c.admin_md,
                                      timeout=CALL_TIMEOUT_S)
        self.assertEqual(stats.live_transactions, 2)

    def test_stats_carry_the_recent_seconds_asked_for(self):
        # Each coordinator counts begun, committed and rolled back per second
        # for 15 minutes; a dashboard over many nodes adds theirs up.
        for i in range(3):
            self.commit(self.begin(name=f"counted-{i}"), wait=True)

        def begun_in_recent():
            stats = self.c.admin.GetStats(
                self.adm.GetStatsRequest(recent_seconds=900),
                metadata=self.c.admin_md, timeout=CALL_TIMEOUT_S)
            ends = [s.end_unix_ms for s in stats.recent]
            self.assertEqual(ends, sorted(ends), "oldest first")
            return (sum(s.begun for s in stats.recent),
                    sum(s.committed for s in stats.recent))
        wait_for(lambda: begun_in_recent() == (3, 3), 10,
                 "three begun and committed in the recent seconds")
        none = self.c.admin.GetStats(self.adm.GetStatsRequest(),
                                     metadata=self.c.admin_md,
                                     timeout=CALL_TIMEOUT_S)
        self.assertEqual(len(none.recent), 0, "none unless asked for")


# ---------------------------------------------------------------------------
# J. Restarts


class RestartTest(BatonTestCase):

    def test_committing_transaction_finishes_after_kill_9(self):
        ty, ps = self.ty, self.ps
        # The participant process's channel outlives batond and reconnects.
        channel = self.c.new_channel(fast_reconnect=True)
        self.addCleanup(channel.close)
        p = self.participant(["r"], label="before-crash", channel=channel)
        xid, (b1, b2) = self.committing_transaction(["r", "r"])
        self.assertEqual(len(p.next_commands(2)), 2)  # received, never answered
        self.c.kill9()
        code, details = p.wait_end()
        self.assertEqual(code, Code.UNAVAILABLE, f"stream ended: {details!r}")
        self.c.start(port=self.c.port)
        self.c.wait_status(xid, ty.GLOBAL_STATUS_COMMITTING)
        again = self.participant(["r"], label="after-crash", channel=channel,
                                 wait_for_ready=True)
        got = self.by_branch(again.next_commands(2))
        for b in (b1, b2):
            self.assertCommand(got[b], xid, b, ps.BRANCH_ACTION_COMMIT)
            again.answer(got[b])
        self.c.wait_status(xid, ty.GLOBAL_STATUS_COMMITTED)
        self.assertBranches(xid, ty.BRANCH_STATUS_COMMITTED)

    def test_open_transactions_roll_back_after_a_restart(self):
        ty, ps = self.ty, self.ps
        bare = self.begin(name="no branches")
        xid, (b,) = self.prepared_transaction(["r"])
        self.c.restart()
        self.c.wait_status(bare, ty.GLOBAL_STATUS_ROLLED_BACK)
        p = self.participant(["r"])
        cmd = p.next_command()
        self.assertCommand(cmd, xid, b, ps.BRANCH_ACTION_ROLLBACK)
        p.answer(cmd)
        self.c.wait_status(xid, ty.GLOBAL_STATUS_ROLLED_BACK)
        self.assertTrue(self.c.get(xid).reason, "a rollback carries a reason")



class ClusterRoutingTest(BatonTestCase):
    """Two nodes, each owning one shard: what a client in any language sees
    when a call reaches the node that does not own the xid's shard."""

    def topology(self, c):
        stub = self.pb.topology_grpc.TopologyServiceStub(c.channel)
        return stub.GetTopology(self.pb.topology.GetTopologyRequest(),
                                timeout=CALL_TIMEOUT_S)

    def test_a_call_on_the_wrong_node_names_the_owner_in_rich_details(self):
        topo = self.pb.topology
        other = self.start_coordinator(
            "--node-id", "1", "--peers", f"127.0.0.1:{self.c.port}",
            "--topology-poll-ms", "50", name="batond-1")
        # A node announces itself before it has loaded (its shard down
        # until then), so this waits for it to serve.
        wait_for(lambda: [s.state for s in self.topology(self.c).shards] ==
                 [topo.SHARD_STATE_SERVING] * 2, 20,
                 "node 0 to see node 1 serving")
        t = self.topology(self.c)
        self.assertEqual([(s.id, s.node, s.state) for s in t.shards],
                         [(0, 0, topo.SHARD_STATE_SERVING),
                          (1, 1, topo.SHARD_STATE_SERVING)])
        xid = other.tx.Begin(self.ts.BeginRequest(name="on node 1"),
                             timeout=CALL_TIMEOUT_S).xid
        self.assertTrue(xid.startswith("1-"), xid)

        with self.assertRaises(grpc.RpcError) as refused:
            self.c.tx.Commit(self.ts.CommitRequest(xid=xid),
                             timeout=CALL_TIMEOUT_S)
        e = refused.exception
        self.assertEqual(e.code(), Code.FAILED_PRECONDITION)
        owner = f"127.0.0.1:{other.port}"
        self.assertIn(owner, e.details())
        details = dict(e.trailing_metadata()).get("grpc-status-details-bin")
        self.assertIsNotNone(details, "no rich error details")
        from google.rpc import status_pb2
        rich = status_pb2.Status.FromString(details)
        self.assertEqual(rich.code, grpc.StatusCode.FAILED_PRECONDITION.value[0])
        self.assertEqual(len(rich.details), 1)
        wrong = topo.WrongShard()
        self.assertTrue(rich.details[0].Unpack(wrong), rich.details[0].type_url)
        self.assertEqual((wrong.shard, wrong.owner_node, wrong.owner_address),
                         (1, 1, owner))

        # The refusal changed nothing: the owner commits it.
        other.tx.Commit(self.ts.CommitRequest(xid=xid), timeout=CALL_TIMEOUT_S)
        other.wait_status(xid, self.ty.GLOBAL_STATUS_COMMITTED)


class SecurityTest(BatonTestCase):
    """TLS, mutual TLS and the authorization policy, as a client in another
    language meets them: plain gRPC credentials and status codes, with a CA
    and certificates made by openssl for the test."""

    def setUp(self):
        # The coordinator is started by each test, with its certificates.
        self.pb = harness.load_stubs()
        self.ts = self.pb.transaction_service
        self.ps = self.pb.participant_service
        self.coordinators = []
        self.pki = tempfile.mkdtemp(prefix="baton-conformance-pki-")
        self.addCleanup(shutil.rmtree, self.pki, True)
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                     self.path("ca.key"), "-out", self.path("ca.pem"),
                     "-days", "1", "-subj", "/CN=conformance-ca")

    def path(self, name):
        return os.path.join(self.pki, name)

    def openssl(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    def issue(self, name, san):
        """A certificate of the test CA for 127.0.0.1 and `san`."""
        with open(self.path(name + ".ext"), "w") as f:
            f.write("extendedKeyUsage=serverAuth,clientAuth\n"
                    f"subjectAltName=IP:127.0.0.1,{san}\n")
        self.openssl("req", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                     self.path(name + ".key"), "-out", self.path(name + ".csr"),
                     "-subj", "/CN=" + name)
        self.openssl("x509", "-req", "-in", self.path(name + ".csr"), "-CA",
                     self.path("ca.pem"), "-CAkey", self.path("ca.key"),
                     "-CAcreateserial", "-days", "1", "-extfile",
                     self.path(name + ".ext"), "-out", self.path(name + ".pem"))

    def credentials(self, name=None):
        def read(n):
            with open(self.path(n), "rb") as f:
                return f.read()
        if name is None:
            return grpc.ssl_channel_credentials(read("ca.pem"))
        return grpc.ssl_channel_credentials(read("ca.pem"),
                                            read(name + ".key"),
                                            read(name + ".pem"))

    def test_tls_mutual_tls_and_the_policy_in_plain_grpc(self):
        for name, san in [("batond", "DNS:localhost"),
                          ("shop", "URI:spiffe://conformance/shop"),
                          ("bank", "URI:spiffe://conformance/bank")]:
            self.issue(name, san)
        policy = self.path("policy.json")
        with open(policy, "w") as f:
            f.write(json.dumps({
                "participants": [{"identities": ["spiffe://conformance/bank"],
                                  "resources": ["bank-*"]}],
                "callers": [{"identities": ["spiffe://conformance/shop"],
                             "methods": ["Begin", "Commit"]}]}))
        self.c = self.start_coordinator(
            "--tls-cert", self.path("batond.pem"), "--tls-key",
            self.path("batond.key"), "--tls-client-ca", self.path("ca.pem"),
            "--authz-policy", policy, credentials=self.credentials("shop"))
        stub = self.pb.transaction_service_grpc.TransactionServiceStub
        begin = self.ts.BeginRequest(name="over tls")

        with self.check("a granted caller begins and commits"):
            xid = self.c.tx.Begin(begin, timeout=CALL_TIMEOUT_S).xid
            self.c.tx.Commit(self.ts.CommitRequest(xid=xid),
                             timeout=CALL_TIMEOUT_S)
        with self.check("a call the caller is not granted"):
            self.assertRpcError(
                grpc.StatusCode.PERMISSION_DENIED, self.c.tx.Rollback,
                self.ts.RollbackRequest(xid=xid), contains=["Rollback"],
                what="Rollback by the shop")
        bank = self.c.channel_with(self.credentials("bank"))
        self.addCleanup(bank.close)
        with self.check("a participant's identity begins nothing"):
            self.assertRpcError(
                grpc.StatusCode.PERMISSION_DENIED, stub(bank).Begin, begin,
                contains=["may not call Begin"], what="Begin by the bank")
        anonymous = self.c.channel_with(self.credentials())
        self.addCleanup(anonymous.close)
        plaintext = self.c.channel_with(None)
        self.addCleanup(plaintext.close)
        for label, channel in [("no client certificate", anonymous),
                               ("plaintext on the TLS port", plaintext)]:
            with self.check(label):
                self.assertRpcError(grpc.StatusCode.UNAVAILABLE,
                                    stub(channel).Begin, begin, what=label)

        with self.check("Attach for a granted resource"):
            granted = RawParticipant(self.c, channel=bank, label="bank")
            self.addCleanup(granted.close)
            granted.hello(["bank-a"])
        with self.check("Attach for a resource not granted"):
            refused = RawParticipant(self.c, channel=bank, label="payroll")
            self.addCleanup(refused.close)
            refused.hello(["payroll"], wait_welcome=False)
            wait_for(refused.ended.is_set, 10, "the refused stream to end")
            self.assertEqual(refused.code, grpc.StatusCode.PERMISSION_DENIED)
            self.assertIn("'payroll'", refused.details)
            self.assertFalse(refused.welcome.is_set())


# ---------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--bin-dir", default=os.path.join(REPO, "build", "bin"))
    parser.add_argument("--proto-dir", default=os.path.join(REPO, "proto"))
    args, rest = parser.parse_known_args()
    harness.configure(args.bin_dir, args.proto_dir)
    unittest.main(argv=[sys.argv[0]] + rest)


if __name__ == "__main__":
    main()
