#include "tools/bench/null_coordinator.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace baton::bench {

// One thread that appends a record per waiting answer to the file, syncs it
// once for all of them, then releases them: batond's group commit without
// the store.
class NullCoordinator::Syncer {
 public:
  explicit Syncer(const std::string& path)
      : fd_(open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644)),
        thread_([this] { Run(); }) {}

  ~Syncer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
    if (fd_ >= 0) close(fd_);
  }

  // `then` runs on the syncer's thread once `bytes` more are on disk.
  void Submit(size_t bytes, std::function<void()> then) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queued_bytes_ += bytes;
      queue_.push_back(std::move(then));
    }
    wake_.notify_one();
  }

 private:
  void Run() {
    std::vector<std::function<void()>> group;
    for (;;) {
      size_t bytes = 0;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        group.swap(queue_);
        std::swap(bytes, queued_bytes_);
      }
      std::string record(bytes, 'x');
      // A failed write or sync only makes the floor look lower; the
      // benchmark is about latency, not this file.
      if (fd_ >= 0 && write(fd_, record.data(), record.size()) >= 0) {
        fdatasync(fd_);
      }
      for (auto& then : group) then();
      group.clear();
    }
  }

  const int fd_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::vector<std::function<void()>> queue_;
  size_t queued_bytes_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

namespace {

std::atomic<uint64_t> next_id{0};

v1::PipelineResult Answer(const v1::PipelineCall& call) {
  v1::PipelineResult result;
  result.set_call_id(call.call_id());
  switch (call.request_case()) {
    case v1::PipelineCall::kBegin:
      result.mutable_begin()->set_xid("null-" + std::to_string(++next_id));
      break;
    case v1::PipelineCall::kCommit:
      result.mutable_commit()->set_status(v1::GLOBAL_STATUS_COMMITTED);
      break;
    case v1::PipelineCall::kRollback:
      result.mutable_rollback()->set_status(v1::GLOBAL_STATUS_ROLLED_BACK);
      break;
    case v1::PipelineCall::kRegisterBranch:
      result.mutable_register_branch()->set_branch_id(++next_id);
      break;
    case v1::PipelineCall::kReportBranch:
      result.mutable_report_branch();
      break;
    case v1::PipelineCall::kSubmitSaga:
      result.mutable_submit_saga()->set_status(v1::GLOBAL_STATUS_COMMITTED);
      break;
    default:
      result.set_code(grpc::StatusCode::UNIMPLEMENTED);
      break;
  }
  return result;
}

// Reads continuously; answers queue behind the write in flight and leave
// together in the next one, as batond's do. Finishes only once no answer is
// still with the syncer, so none outlives the session.
class NullSession
    : public grpc::ServerBidiReactor<v1::PipelineRequest, v1::PipelineReply> {
 public:
  explicit NullSession(NullCoordinator::Syncer* syncer) : syncer_(syncer) {
    StartRead(&incoming_);
  }

 private:
  // Roughly what batond writes for one call.
  static constexpr size_t kRecordBytes = 300;

  void OnReadDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ok) {
      reads_ended_ = true;
      FinishIfDrainedLocked();
      return;
    }
    if (syncer_ == nullptr) {
      for (const v1::PipelineCall& call : incoming_.calls()) {
        *queued_.add_results() = Answer(call);
      }
      WriteLocked();
    } else {
      auto answers = std::make_shared<v1::PipelineReply>();
      for (const v1::PipelineCall& call : incoming_.calls()) {
        *answers->add_results() = Answer(call);
      }
      ++with_syncer_;
      syncer_->Submit(kRecordBytes * answers->results_size(),
                      [this, answers] { Synced(answers.get()); });
    }
    StartRead(&incoming_);
  }

  void Synced(v1::PipelineReply* answers) {
    std::lock_guard<std::mutex> lock(mu_);
    --with_syncer_;
    if (!broken_) queued_.MergeFrom(*answers);
    WriteLocked();
    FinishIfDrainedLocked();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) {
      broken_ = true;
      queued_.Clear();
    }
    WriteLocked();
    FinishIfDrainedLocked();
  }

  void OnDone() override { delete this; }

  void WriteLocked() {
    if (writing_ || finished_ || broken_ || queued_.results_size() == 0) {
      return;
    }
    sending_.Clear();
    sending_.Swap(&queued_);
    writing_ = true;
    StartWrite(&sending_);
  }

  void FinishIfDrainedLocked() {
    if (finished_ || writing_ || with_syncer_ > 0) return;
    if (!reads_ended_ || (!broken_ && queued_.results_size() > 0)) return;
    finished_ = true;
    Finish(grpc::Status::OK);
  }

  NullCoordinator::Syncer* const syncer_;
  std::mutex mu_;
  v1::PipelineRequest incoming_;
  v1::PipelineReply queued_;
  v1::PipelineReply sending_;
  int with_syncer_ = 0;
  bool writing_ = false;
  bool broken_ = false;
  bool reads_ended_ = false;
  bool finished_ = false;
};

}  // namespace

NullCoordinator::NullCoordinator(const std::string& sync_file)
    : syncer_(sync_file.empty() ? nullptr
                                : std::make_unique<Syncer>(sync_file)) {}

NullCoordinator::~NullCoordinator() = default;

grpc::ServerBidiReactor<v1::PipelineRequest, v1::PipelineReply>*
NullCoordinator::Pipeline(grpc::CallbackServerContext*) {
  return new NullSession(syncer_.get());
}

}  // namespace baton::bench
