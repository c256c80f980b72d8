#ifndef BATON_TOOLS_BENCH_PARTICIPANT_PROCESS_H_
#define BATON_TOOLS_BENCH_PARTICIPANT_PROCESS_H_

#include <string>

// The participant process baton-bench starts for a workload (the hidden
// `participant` subcommand): a real SDK Participant attached to batond,
// serving one resource with handlers that do nothing.
namespace baton::bench {

struct ParticipantFlags {
  std::string coordinator;
  // `coordinator` is a seed of a cluster: attach to every node, and route
  // TCC phase-one calls to their xid's owner.
  bool routed = false;
  std::string resource;
  // "xa", "tcc" or "saga": how the resource is served.
  std::string protocol = "xa";
  // TCC and saga only. Empty: a pass-through barrier that records nothing
  // (the hooks do nothing, so there is nothing to guard). Otherwise the
  // SDK's LevelDbBarrier, synced, in a LevelDB created in this directory.
  std::string barrier_dir;
  // TCC and saga: the hooks do not declare themselves local, so the barrier
  // marks each try or action started before it runs (Flags::mark_started).
  bool mark_started = false;
  // "xa" only: a libpq connection string. The resource is then the SDK's
  // PostgresXaResource moving money in that database (postgres_bank.h), and
  // the load generator runs each branch's phase one here (Enlist).
  std::string postgres;
  // "xa" only: the load generator runs each branch's phase one here
  // (Enlist) on the trivial resource, as it does with `postgres`.
  bool enlist = false;
  // Phase one on gRPC's synchronous server with the SDK's blocking Try and
  // Enlist, instead of the callback server with TryAsync and EnlistAsync.
  bool blocking = false;
  // Written once attached: for "tcc", and "xa" with `postgres` or `enlist`,
  // the port of
  // the TccTry service (try.proto) through which the load generator runs
  // Participant::Try or Enlist; 1 otherwise.
  std::string ready_file;
};

// Serves until SIGINT or SIGTERM (call BlockStopSignals() first), then
// exits the process. Returns an exit code only if it cannot start.
int ServeParticipant(const ParticipantFlags& flags);

}  // namespace baton::bench

#endif  // BATON_TOOLS_BENCH_PARTICIPANT_PROCESS_H_
