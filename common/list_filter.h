#ifndef BATON_COMMON_LIST_FILTER_H_
#define BATON_COMMON_LIST_FILTER_H_

#include <cstdint>
#include <string_view>

#include "baton/v1/admin_service.pb.h"

// The words operators filter transactions with, the same in batonctl and
// the console.
namespace baton {

// Adds the statuses a word names to `request`: begun, committing,
// committed, rolling-back, rolled-back, commit-stuck, rollback-stuck, and
// needs-attention for both stuck ones. False for any other word.
bool AddStatusWord(std::string_view word, v1::ListTransactionsRequest* request);

// 2pc, tcc or saga; false for any other word.
bool ProtocolWord(std::string_view word, v1::Protocol* protocol);

// "90s", "5m", "2h", "1d" or plain milliseconds; false if malformed.
bool ParseDuration(std::string_view text, int64_t* ms);

}  // namespace baton

#endif  // BATON_COMMON_LIST_FILTER_H_
