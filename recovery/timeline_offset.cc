#include "recovery/timeline_offset.h"

#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace baton {

absl::StatusOr<int64_t> LoadTimelineOffset(TransactionStore* store) {
  std::string value;
  absl::Status s = store->GetMeta(kTimelineOffsetKey, &value);
  if (absl::IsNotFound(s)) return 0;
  if (!s.ok()) return s;
  int64_t offset = 0;
  if (!absl::SimpleAtoi(value, &offset)) {
    return absl::DataLossError(fmt::format(
        "the stored clock offset (meta key '{}') is '{}', not a number; the "
        "data dir is damaged: restore it from a backup",
        kTimelineOffsetKey, value));
  }
  return offset;
}

TimelineOffsetSaver::TimelineOffsetSaver(Timeline* timeline,
                                         GroupCommitter* committer)
    : timeline_(timeline),
      committer_(committer),
      saved_(timeline->WallOffsetMs()) {}

void TimelineOffsetSaver::SaveIfMoved() {
  const int64_t offset = timeline_->WallOffsetMs();
  if (std::abs(offset - saved_) < kSaveAfterMs) return;
  saved_ = offset;
  StoreBatch batch;
  batch.PutMeta(kTimelineOffsetKey, std::to_string(offset));
  // A failed write fail-stops the store, which says so itself.
  committer_->Submit(std::move(batch), [offset](const absl::Status& s) {
    if (s.ok()) spdlog::info("clock offset {:+} ms saved", offset);
  });
}

}  // namespace baton
