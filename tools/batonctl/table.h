#ifndef BATON_TOOLS_BATONCTL_TABLE_H_
#define BATON_TOOLS_BATONCTL_TABLE_H_

#include <cstdint>
#include <string>
#include <vector>

namespace baton::ctl {

// A text table with left-aligned columns sized to their widest cell.
class Table {
 public:
  explicit Table(std::vector<std::string> header) {
    rows_.push_back(std::move(header));
  }
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// "2026-11-22T14:05:53Z", or "-" for 0.
std::string FormatTime(int64_t unix_ms);
// "3m12s" from a duration in milliseconds.
std::string FormatAge(int64_t ms);

}  // namespace baton::ctl

#endif  // BATON_TOOLS_BATONCTL_TABLE_H_
