#ifndef BATON_PARTICIPANT_SDK_INTERNAL_COORDINATOR_LINK_H_
#define BATON_PARTICIPANT_SDK_INTERNAL_COORDINATOR_LINK_H_

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "baton/v1/participant_service.grpc.pb.h"
#include "common/steady_cond_var.h"
#include "common/tls.h"

namespace baton::internal {

// A participant's Attach stream to one coordinator node: attaches on its
// own thread, hands each command it receives to `on_command`, and
// reattaches with backoff whenever the stream breaks, until destroyed.
//
// Thread-safe. The callbacks run on the link's thread, without its lock;
// they must not destroy the link.
class CoordinatorLink {
 public:
  struct Options {
    std::string address;
    TlsFiles tls;
    std::string token;  // A bearer token (over TLS only); empty: none.
    v1::ParticipantMessage hello;  // Sent first on every stream.
    std::chrono::milliseconds reconnect_initial{100};
    std::chrono::milliseconds reconnect_max{2000};
    // Each command received.
    std::function<void(v1::BranchCommand)> on_command;
    // After every attach, before the first command is read: the time to
    // report what is in doubt for this node.
    std::function<void(CoordinatorLink*)> on_attached;
    // After every change of attached().
    std::function<void()> on_state;
  };

  explicit CoordinatorLink(Options options);
  ~CoordinatorLink();

  CoordinatorLink(const CoordinatorLink&) = delete;
  CoordinatorLink& operator=(const CoordinatorLink&) = delete;

  const std::string& address() const { return options_.address; }
  bool attached() const;

  // Writes `message` if attached. Without a stream it is dropped: the
  // coordinator resends its commands after the next attach, and a
  // participant reports what is in doubt again then.
  void Write(const v1::ParticipantMessage& message);

  // Queues a phase-two result and writes it. The first caller to find no
  // write in flight writes, for itself and for every result queued while it
  // wrote; the others return at once, so a burst costs a few writes.
  void SendResult(v1::BranchResult result);

 private:
  void Run();
  // One stream until it breaks; true if it got attached.
  bool RunStream();
  v1::ParticipantMessage TakeUnsentResults()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(results_mu_);

  const Options options_;
  std::unique_ptr<v1::ParticipantService::Stub> stub_;

  mutable absl::Mutex mu_;
  SteadyCondVar wake_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool attached_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  using Stream =
      grpc::ClientReaderWriter<v1::ParticipantMessage, v1::CoordinatorMessage>;
  Stream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;  // Writes too.

  absl::Mutex results_mu_;  // Never held with mu_.
  std::deque<v1::BranchResult> unsent_results_ ABSL_GUARDED_BY(results_mu_);
  bool writing_results_ ABSL_GUARDED_BY(results_mu_) = false;
  // The coordinator reads BranchResults.
  bool batch_results_ ABSL_GUARDED_BY(results_mu_) = false;

  std::thread thread_;  // Last: it uses everything above.
};

}  // namespace baton::internal

#endif  // BATON_PARTICIPANT_SDK_INTERNAL_COORDINATOR_LINK_H_
