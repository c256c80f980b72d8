#ifndef BATON_SAMPLES_COUNTERS_H_
#define BATON_SAMPLES_COUNTERS_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "baton/leveldb_barrier.h"
#include "leveldb/db.h"

// The samples' stock counters: decimal numbers under "<counter>/<key>" in
// the service's LevelDB, 0 until first written.
namespace baton::samples {

// Outside hooks: what is synced.
int64_t ReadCounter(leveldb::DB* db, const std::string& key);

// In a hook: what earlier hooks left, synced or not yet (LevelDbBarrier::Get).
// UNAVAILABLE if the store cannot be read.
absl::StatusOr<int64_t> ReadCounter(LocalTransaction& local,
                                    const std::string& key);

// Adds each delta to its counter of `key`, through the hook's batch.
absl::Status AddToCounters(
    LocalTransaction& local, const std::string& key,
    std::initializer_list<std::pair<const char*, int64_t>> deltas);

}  // namespace baton::samples

#endif  // BATON_SAMPLES_COUNTERS_H_
