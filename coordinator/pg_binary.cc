#include "coordinator/pg_binary.h"

#include <endian.h>

#include <cstring>

#include "fmt/format.h"

namespace baton::pg {
namespace {

// From PostgreSQL's pg_type.dat: element types and their array types.
constexpr Oid kBool = 16, kBytea = 17, kInt8 = 20, kInt4 = 23, kText = 25;
constexpr Oid kBoolArray = 1000, kByteaArray = 1001, kInt4Array = 1007,
              kTextArray = 1009, kInt8Array = 1016;

void PutInt32(std::string* out, int32_t value) {
  uint32_t big = htobe32(static_cast<uint32_t>(value));
  out->append(reinterpret_cast<const char*>(&big), 4);
}

void PutInt64(std::string* out, int64_t value) {
  uint64_t big = htobe64(static_cast<uint64_t>(value));
  out->append(reinterpret_cast<const char*>(&big), 8);
}

// array_send's layout: dimensions, a has-NULLs flag, the element type, each
// dimension's length and lower bound, then each element as its length (-1
// for NULL) and its bytes.
std::string ArrayHeader(Oid element, size_t count, bool has_nulls) {
  std::string out;
  PutInt32(&out, count == 0 ? 0 : 1);
  PutInt32(&out, has_nulls ? 1 : 0);
  PutInt32(&out, static_cast<int32_t>(element));
  if (count > 0) {
    PutInt32(&out, static_cast<int32_t>(count));
    PutInt32(&out, 1);
  }
  return out;
}

// An array of fixed-width elements, none NULL.
template <typename Values, typename Put>
std::string FixedWidthArray(Oid element, const Values& values, int32_t width,
                            Put put) {
  std::string out = ArrayHeader(element, values.size(), false);
  for (auto v : values) {
    PutInt32(&out, width);
    put(&out, v);
  }
  return out;
}

int32_t ReadInt32(const char* p) {
  uint32_t big;
  std::memcpy(&big, p, 4);
  return static_cast<int32_t>(be32toh(big));
}

}  // namespace

void Params::Add(Oid type, std::string bytes) {
  types_.push_back(type);
  lengths_.push_back(static_cast<int>(bytes.size()));
  formats_.push_back(1);
  values_.push_back(std::move(bytes));
}

const char* const* Params::values() {
  pointers_.clear();
  for (const std::string& value : values_) pointers_.push_back(value.data());
  return pointers_.data();
}

void Params::Text(std::string_view value) { Add(kText, std::string(value)); }

void Params::Bytes(std::string_view value) { Add(kBytea, std::string(value)); }

void Params::Int8(int64_t value) {
  std::string out;
  PutInt64(&out, value);
  Add(kInt8, std::move(out));
}

void Params::TextArray(const std::vector<std::string_view>& values) {
  std::string out = ArrayHeader(kText, values.size(), false);
  for (std::string_view v : values) {
    PutInt32(&out, static_cast<int32_t>(v.size()));
    out.append(v);
  }
  Add(kTextArray, std::move(out));
}

void Params::BytesArray(
    const std::vector<std::optional<std::string_view>>& values) {
  bool has_nulls = false;
  for (const auto& v : values) has_nulls |= !v.has_value();
  std::string out = ArrayHeader(kBytea, values.size(), has_nulls);
  for (const auto& v : values) {
    PutInt32(&out, v ? static_cast<int32_t>(v->size()) : -1);
    if (v) out.append(*v);
  }
  Add(kByteaArray, std::move(out));
}

void Params::Int8Array(const std::vector<int64_t>& values) {
  Add(kInt8Array, FixedWidthArray(kInt8, values, 8, PutInt64));
}

void Params::Int4Array(const std::vector<int32_t>& values) {
  Add(kInt4Array, FixedWidthArray(kInt4, values, 4, PutInt32));
}

void Params::BoolArray(const std::vector<bool>& values) {
  Add(kBoolArray,
      FixedWidthArray(kBool, values, 1, [](std::string* out, bool v) {
        out->push_back(v ? 1 : 0);
      }));
}

int64_t GetInt8(const PGresult* result, int row, int column) {
  uint64_t big;
  std::memcpy(&big, PQgetvalue(result, row, column), 8);
  return static_cast<int64_t>(be64toh(big));
}

int32_t GetInt4(const PGresult* result, int row, int column) {
  return ReadInt32(PQgetvalue(result, row, column));
}

std::string_view GetBytes(const PGresult* result, int row, int column) {
  return std::string_view(PQgetvalue(result, row, column),
                          PQgetlength(result, row, column));
}

bool IsNull(const PGresult* result, int row, int column) {
  return PQgetisnull(result, row, column) != 0;
}

absl::Status GetBytesArray(const PGresult* result, int row, int column,
                           std::vector<std::string_view>* out) {
  out->clear();
  if (IsNull(result, row, column)) return absl::OkStatus();
  std::string_view field = GetBytes(result, row, column);
  auto damaged = [&](std::string_view why) {
    return absl::DataLossError(fmt::format(
        "column {} of a result is not a one-dimensional bytea array: {}",
        column, why));
  };
  if (field.size() < 12) return damaged("too short");
  const int32_t dimensions = ReadInt32(field.data());
  if (dimensions == 0) return absl::OkStatus();
  if (dimensions != 1 || field.size() < 20) return damaged("dimensions");
  const int32_t count = ReadInt32(field.data() + 12);
  size_t at = 20;
  for (int32_t i = 0; i < count; ++i) {
    if (field.size() < at + 4) return damaged("truncated");
    const int32_t length = ReadInt32(field.data() + at);
    at += 4;
    if (length < 0) return damaged("a NULL element");
    if (field.size() < at + static_cast<size_t>(length)) {
      return damaged("truncated");
    }
    out->push_back(field.substr(at, static_cast<size_t>(length)));
    at += static_cast<size_t>(length);
  }
  return absl::OkStatus();
}

}  // namespace baton::pg
