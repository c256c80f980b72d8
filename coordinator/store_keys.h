#ifndef BATON_COORDINATOR_STORE_KEYS_H_
#define BATON_COORDINATOR_STORE_KEYS_H_

#include <cstdint>
#include <string>
#include <string_view>

// The LevelDB key layout. Timestamps are fixed-width big-endian hex so that
// byte order is time order and the two indexes are range scans:
//
//   t/<xid>                    the Transaction record's own fields
//   b/<xid>/<id:16 hex>        each of its branches
//   d/<xid>                    its saga's definition, if a saga
//   u/<due:16 hex>/<xid>       present while the record is not terminal;
//                              due = next_action_unix_ms (0: none timed)
//   f/<finished:16 hex>/<xid>  present once the record is terminal
//   m/<name>                   coordinator metadata (e.g. the epoch)
namespace baton::store_keys {

inline constexpr std::string_view kRecordPrefix = "t/";
inline constexpr std::string_view kUnfinishedPrefix = "u/";
inline constexpr std::string_view kFinishedPrefix = "f/";
inline constexpr std::string_view kMetaPrefix = "m/";
inline constexpr std::string_view kBranchPrefix = "b/";
inline constexpr std::string_view kDefinitionPrefix = "d/";
// The data directory's format (kStoreFormat), a meta key.
inline constexpr std::string_view kFormatName = "format";

std::string RecordKey(std::string_view xid);
std::string UnfinishedKey(int64_t due_ms, std::string_view xid);
std::string FinishedKey(int64_t finished_ms, std::string_view xid);
std::string MetaKey(std::string_view name);
std::string BranchKey(std::string_view xid, uint64_t branch_id);
// Every branch key of xid starts with this, and no other key does.
std::string BranchPrefix(std::string_view xid);
std::string DefinitionKey(std::string_view xid);

// Splits an index key ("u/..." or "f/...") into its time and xid. Returns
// false if the key is not an index key.
bool ParseIndexKey(std::string_view key, int64_t* ms, std::string* xid);

}  // namespace baton::store_keys

#endif  // BATON_COORDINATOR_STORE_KEYS_H_
