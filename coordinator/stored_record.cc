#include "coordinator/stored_record.h"

#include "fmt/format.h"

namespace baton {

std::string Printable(std::string_view key) {
  std::string out;
  for (char c : key.substr(0, 200)) {
    out += (c >= 0x20 && c < 0x7f)
               ? std::string(1, c)
               : fmt::format("\\x{:02x}", static_cast<uint8_t>(c));
  }
  return out;
}

absl::Status ParseStoredRecord(std::string_view xid, std::string_view bytes,
                               std::string_view where, v1::Transaction* txn) {
  if (!txn->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(fmt::format(
        "record {} is corrupt: its {} bytes do not parse as a transaction",
        Printable(where), bytes.size()));
  }
  if (txn->xid() != xid) {
    return absl::DataLossError(
        fmt::format("record {} is corrupt: it holds transaction {}",
                    Printable(where), Printable(txn->xid())));
  }
  if (txn->branches_size() > 0) {
    return absl::DataLossError(fmt::format(
        "record {} is corrupt: it holds branches inside it, which the store "
        "keeps apart",
        Printable(where)));
  }
  return absl::OkStatus();
}

absl::Status AppendStoredBranch(std::string_view bytes, std::string_view where,
                                v1::Transaction* txn) {
  v1::Branch* branch = txn->add_branches();
  if (!branch->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(
        fmt::format("branch {} is corrupt: it does not parse as a branch",
                    Printable(where)));
  }
  const uint64_t expected = static_cast<uint64_t>(txn->branches_size());
  if (branch->branch_id() != expected) {
    return absl::DataLossError(fmt::format(
        "branch {} is corrupt: it holds branch {} where branch {} of {} "
        "belongs",
        Printable(where), branch->branch_id(), expected, txn->xid()));
  }
  return absl::OkStatus();
}

absl::Status ParseStoredDefinition(std::string_view bytes,
                                   std::string_view where,
                                   v1::Transaction* txn) {
  if (!txn->mutable_saga()->mutable_definition()->ParseFromArray(
          bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(
        fmt::format("{} is corrupt: it does not parse as a saga definition",
                    Printable(where)));
  }
  return absl::OkStatus();
}

}  // namespace baton
