#ifndef BATON_COORDINATOR_STREAM_LIMITS_H_
#define BATON_COORDINATOR_STREAM_LIMITS_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "common/happens_before.h"

// What one client may cost batond through its long-lived streams, so that
// idle, silent or never-reading peers get a clear status and a bounded
// share while everyone else is served. docs/SECURITY.md "Limits".
namespace baton {

struct StreamLimits {
  // Attach streams open at once, greeted or not; and Pipeline streams.
  // Beyond it a new stream is refused with RESOURCE_EXHAUSTED.
  int max_attach_streams = 10'000;
  int max_pipeline_streams = 10'000;
  // An Attach stream must send its Hello this soon after opening, or it is
  // closed with DEADLINE_EXCEEDED: a silent stream holds a slot and memory.
  int64_t hello_timeout_ms = 10'000;
  // Commands queued for one participant stream, in bytes. Past it the
  // stream takes no more (they go to another instance, or are retried on
  // the usual schedule); if it has also taken nothing for
  // participant_stall_ms, it does not read at all, and is cut: its commands
  // go to another instance or wait for it to attach again.
  size_t participant_queue_bytes = 64u << 20;
  int64_t participant_stall_ms = 30'000;
};

// Counts the open streams of one kind against a cap. Thread-safe.
class StreamGate {
 public:
  // `kind` names the streams in refusals ("Attach"); `flag` is the batond
  // flag that raises the cap.
  StreamGate(std::string kind, std::string flag, int max)
      : kind_(std::move(kind)), flag_(std::move(flag)), max_(max) {}

  // Holds one place at the gate until destroyed; movable.
  class Slot {
   public:
    Slot() = default;
    explicit Slot(StreamGate* gate) : gate_(gate) {}
    Slot(Slot&& other) noexcept : gate_(std::exchange(other.gate_, nullptr)) {}
    Slot& operator=(Slot&& other) noexcept {
      Leave();
      gate_ = std::exchange(other.gate_, nullptr);
      return *this;
    }
    ~Slot() { Leave(); }
    explicit operator bool() const { return gate_ != nullptr; }

   private:
    void Leave() {
      if (gate_ != nullptr)
        gate_->open_.fetch_sub(1, std::memory_order_relaxed);
      gate_ = nullptr;
    }
    StreamGate* gate_ = nullptr;
  };

  // A slot, or an empty one (and `refusal` set to RESOURCE_EXHAUSTED
  // naming the cap and its flag) if `max` are open.
  Slot Enter(grpc::Status* refusal);
  const std::string& kind() const { return kind_; }

 private:
  const std::string kind_;
  const std::string flag_;
  const int max_;
  std::atomic<int> open_{0};
};

// A stream refused before it began: finishes with `status` and deletes
// itself when gRPC is done with it.
class RefusedStream
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit RefusedStream(const grpc::Status& status) {
    EndOfReaction end(this);
    Finish(status);
  }
  void OnDone() override {
    HappensAfter(this);
    delete this;
  }
};

}  // namespace baton

#endif  // BATON_COORDINATOR_STREAM_LIMITS_H_
