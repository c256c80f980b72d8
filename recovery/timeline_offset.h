#ifndef BATON_RECOVERY_TIMELINE_OFFSET_H_
#define BATON_RECOVERY_TIMELINE_OFFSET_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "common/timeline.h"
#include "coordinator/group_commit.h"
#include "coordinator/store.h"

namespace baton {

// The coordinator's timeline outlives the process: its offset from the wall
// clock is kept in the store, and the next start continues the same
// timeline (Timeline(clock, offset)), so the instants in stored records
// keep their meaning after a step of the wall clock and a restart. Only a
// step while no coordinator ran (or in the moment before a changed offset
// is saved) is left to instants::CarryOver.

// Meta key of the offset, in decimal milliseconds.
inline constexpr char kTimelineOffsetKey[] = "timeline-offset";

// The offset an earlier process saved; 0 if none did. DATA_LOSS if what is
// stored is not a number.
absl::StatusOr<int64_t> LoadTimelineOffset(TransactionStore* store);

// Saves `timeline`'s offset, durably, once it moved by a second or more
// since the last save. Not thread-safe: one thread calls SaveIfMoved (the
// recovery loop's, every tick).
class TimelineOffsetSaver {
 public:
  static constexpr int64_t kSaveAfterMs = 1000;

  // `timeline` and `committer` must outlive this object. The offset it
  // shows now counts as saved.
  TimelineOffsetSaver(Timeline* timeline, GroupCommitter* committer);

  void SaveIfMoved();

 private:
  Timeline* const timeline_;
  GroupCommitter* const committer_;
  int64_t saved_;
};

}  // namespace baton

#endif  // BATON_RECOVERY_TIMELINE_OFFSET_H_
