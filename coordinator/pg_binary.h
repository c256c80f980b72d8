#ifndef BATON_COORDINATOR_PG_BINARY_H_
#define BATON_COORDINATOR_PG_BINARY_H_

#include <libpq-fe.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace baton::pg {

// Parameters for PQexecParams / PQsendQueryPrepared in PostgreSQL's binary
// format, so bytes go over the wire as they are (no hex or escaping) and a
// whole column of a group travels as one array: one statement writes many
// rows ("INSERT ... SELECT * FROM unnest($1, $2)").
//
// Not thread-safe; the pointers it hands out live as long as it does and
// until the next Add.
class Params {
 public:
  void Text(std::string_view value);
  void Bytes(std::string_view value);
  void Int8(int64_t value);

  // One-dimensional arrays. Strings are only viewed: they must outlive the
  // call that encodes them, not the Params.
  void TextArray(const std::vector<std::string_view>& values);
  // nullopt elements are NULL.
  void BytesArray(const std::vector<std::optional<std::string_view>>& values);
  void Int8Array(const std::vector<int64_t>& values);
  void Int4Array(const std::vector<int32_t>& values);
  void BoolArray(const std::vector<bool>& values);

  int size() const { return static_cast<int>(values_.size()); }
  const Oid* types() const { return types_.data(); }
  const char* const* values();
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  void Add(Oid type, std::string bytes);

  std::vector<Oid> types_;
  std::vector<std::string> values_;
  std::vector<const char*> pointers_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
};

// Reading a binary-format result's fields.
int64_t GetInt8(const PGresult* result, int row, int column);
int32_t GetInt4(const PGresult* result, int row, int column);
std::string_view GetBytes(const PGresult* result, int row, int column);
bool IsNull(const PGresult* result, int row, int column);

// The elements of a one-dimensional binary array field (a bytea[] from
// array_agg, say); a NULL field is an empty array. DATA_LOSS if the bytes
// are not an array of non-NULL elements.
absl::Status GetBytesArray(const PGresult* result, int row, int column,
                           std::vector<std::string_view>* out);

}  // namespace baton::pg

#endif  // BATON_COORDINATOR_PG_BINARY_H_
