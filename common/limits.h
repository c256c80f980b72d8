#ifndef BATON_COMMON_LIMITS_H_
#define BATON_COMMON_LIMITS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

// Size limits of the wire contract. The coordinator enforces them with
// INVALID_ARGUMENT; the SDK checks early so callers fail before a round trip.
namespace baton::limits {

inline constexpr size_t kMaxNameBytes = 256;
inline constexpr size_t kMaxResourceBytes = 128;
inline constexpr size_t kMaxRequestIdBytes = 128;
inline constexpr size_t kMaxReasonBytes = 1024;
inline constexpr size_t kMaxApplicationDataBytes = 64 * 1024;
inline constexpr size_t kMaxBranchesPerTransaction = 1000;
inline constexpr size_t kMaxResourcesPerParticipant = 256;
inline constexpr uint32_t kMaxTimeoutMs = 24u * 60 * 60 * 1000;
// The sum of application data over one transaction's branches.
inline constexpr size_t kMaxTransactionDataBytes = 8 * 1024 * 1024;
// Every message, including a whole transaction's record, fits in this: the
// coordinator receives messages up to this size.
inline constexpr int kMaxMessageBytes = 16 * 1024 * 1024;
// What the coordinator sends a peer that did not say how much it reads
// (gRPC's default receive limit), and the least a peer may say: room for
// any one command or answer.
inline constexpr size_t kDefaultPeerReceiveBytes = 4 * 1024 * 1024;
inline constexpr size_t kMinPeerReceiveBytes = 128 * 1024;

// What one element of a repeated message field adds to its parent beyond
// its own ByteSizeLong(): tag and length, plus room for a call id set after
// measuring. Batches are cut with it so they stay under kMaxMessageBytes.
inline constexpr size_t kRepeatedElementFramingBytes = 16;

// `text` cut to at most kMaxReasonBytes on a UTF-8 character boundary: a
// proto string must stay valid UTF-8, or its whole message fails to parse.
inline std::string TruncatedReason(std::string_view text) {
  if (text.size() <= kMaxReasonBytes) return std::string(text);
  size_t end = kMaxReasonBytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
    --end;
  }
  return std::string(text.substr(0, end));
}

}  // namespace baton::limits

#endif  // BATON_COMMON_LIMITS_H_
