#include "samples/travel/inventory.h"

#include <thread>

#include "fmt/format.h"
#include "samples/counters.h"
#include "samples/travel/step_payload.h"

namespace baton::samples {

absl::Status Inventory::Open(const std::string& dir, std::string resource,
                             const std::map<std::string, int64_t>& seed,
                             const std::string& journal_path,
                             std::unique_ptr<Inventory>* out) {
  leveldb::Options options;
  options.create_if_missing = true;
  leveldb::DB* raw = nullptr;
  leveldb::Status s = leveldb::DB::Open(options, dir, &raw);
  if (!s.ok()) return absl::UnavailableError(s.ToString());
  std::unique_ptr<leveldb::DB> db(raw);
  std::string ignored;
  if (raw->Get(leveldb::ReadOptions(), "seeded", &ignored).IsNotFound()) {
    leveldb::WriteBatch batch;
    for (const auto& [key, units] : seed) {
      batch.Put("available/" + key, std::to_string(units));
    }
    batch.Put("seeded", "1");
    leveldb::WriteOptions sync;
    sync.sync = true;
    s = raw->Write(sync, &batch);
    if (!s.ok()) return absl::UnavailableError(s.ToString());
  }
  FILE* journal = nullptr;
  if (!journal_path.empty()) {
    journal = std::fopen(journal_path.c_str(), "a");
    if (journal == nullptr) {
      return absl::FailedPreconditionError(
          fmt::format("cannot open journal {}", journal_path));
    }
  }
  out->reset(new Inventory(std::move(db), std::move(resource), journal));
  return absl::OkStatus();
}

Inventory::~Inventory() {
  if (journal_ != nullptr) std::fclose(journal_);
}

Inventory::Level Inventory::GetLevel(const std::string& key) {
  return Level{ReadCounter(db_.get(), "available/" + key),
               ReadCounter(db_.get(), "booked/" + key)};
}

void Inventory::Journal(const char* what, const SagaStepContext& step,
                        const std::string& key) {
  if (journal_ == nullptr) return;
  std::lock_guard<std::mutex> lock(journal_mu_);
  // One unbuffered write per line: lines from several services sharing the
  // file stay whole and in the order they happened.
  std::string line = fmt::format("{} {} {} {} {}\n", resource_, what, step.xid,
                                 step.step, key);
  std::fwrite(line.data(), 1, line.size(), journal_);
  std::fflush(journal_);
}

PhaseTwoResult Inventory::Act(const SagaStepContext& step,
                              LocalTransaction& local) {
  absl::StatusOr<StepPayload> p = DecodeStepPayload(step.payload);
  if (!p.ok()) return PhaseTwoResult::Failed(p.status().ToString());
  if (p->act_delay_ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(p->act_delay_ms));
  }
  if (step.attempt <= p->act_retries) {
    return PhaseTwoResult::Retry(
        fmt::format("{} is busy (attempt {} of the first {} that fail)",
                    resource_, step.attempt, p->act_retries));
  }
  if (p->act_fail) {
    return PhaseTwoResult::Failed(
        fmt::format("{} refused to book {}", resource_, p->key));
  }
  absl::StatusOr<int64_t> read = ReadCounter(local, "available/" + p->key);
  // A store that cannot be read now may be readable at the next attempt.
  if (!read.ok()) return PhaseTwoResult::Retry(read.status().ToString());
  const int64_t available = *read;
  if (available < p->units) {
    return PhaseTwoResult::Failed(fmt::format(
        "no {} left: {} available, {} requested", p->key, available, p->units));
  }
  if (absl::Status s = AddToCounters(
          local, p->key, {{"available", -p->units}, {"booked", p->units}});
      !s.ok()) {
    return PhaseTwoResult::Retry(s.ToString());
  }
  Journal("act", step, p->key);
  return PhaseTwoResult::Done();
}

PhaseTwoResult Inventory::Compensate(const SagaStepContext& step,
                                     LocalTransaction& local) {
  absl::StatusOr<StepPayload> p = DecodeStepPayload(step.payload);
  if (!p.ok()) return PhaseTwoResult::Failed(p.status().ToString());
  if (step.attempt <= p->compensate_retries) {
    return PhaseTwoResult::Retry(
        fmt::format("{} cannot release {} yet (attempt {})", resource_, p->key,
                    step.attempt));
  }
  // An action that only started wrote nothing: its writes share one batch
  // with its completion record.
  if (step.action_state == TryState::kCompleted) {
    if (absl::Status s = AddToCounters(
            local, p->key, {{"booked", -p->units}, {"available", p->units}});
        !s.ok()) {
      return PhaseTwoResult::Retry(s.ToString());
    }
  }
  Journal("compensate", step, p->key);
  return PhaseTwoResult::Done();
}

}  // namespace baton::samples
