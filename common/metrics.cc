#include "common/metrics.h"

#include <algorithm>

#include "fmt/format.h"

namespace baton::metrics {
namespace {

std::string Escape(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double v) { return fmt::format("{}", v); }

void RenderHeader(std::string* out, const std::string& name,
                  const std::string& help, const char* type) {
  *out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), counts_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) counts_[i] = 0;
}

void Histogram::Observe(double value) {
  size_t bucket = std::lower_bound(bounds_->begin(), bounds_->end(), value) -
                  bounds_->begin();
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snapshot;
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    snapshot.cumulative.push_back(running);
  }
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

std::string Series(const std::string& name,
                   const std::vector<std::string>& labels,
                   const LabelValues& values) {
  if (labels.empty()) return name;
  std::string out = name + "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ",";
    out += fmt::format("{}=\"{}\"", labels[i],
                       i < values.size() ? Escape(values[i]) : "");
  }
  return out + "}";
}

template <>
std::unique_ptr<Counter> Family<Counter>::MakeChild() const {
  return std::make_unique<Counter>();
}

template <>
std::unique_ptr<Histogram> Family<Histogram>::MakeChild() const {
  return std::make_unique<Histogram>(&bounds_);
}

template <>
void Family<Counter>::Render(std::string* out) const {
  RenderHeader(out, name_, help_, "counter");
  absl::MutexLock lock(&mu_);
  for (const auto& [values, counter] : children_) {
    *out += fmt::format("{} {}\n", Series(name_, labels_, values),
                        counter->value());
  }
}

template <>
uint64_t Family<Counter>::Sum(int label, std::string_view value) const {
  uint64_t sum = 0;
  absl::MutexLock lock(&mu_);
  for (const auto& [values, counter] : children_) {
    if (label < 0 || (static_cast<size_t>(label) < values.size() &&
                      values[label] == value)) {
      sum += counter->value();
    }
  }
  return sum;
}

template <>
void Family<Histogram>::Render(std::string* out) const {
  RenderHeader(out, name_, help_, "histogram");
  std::vector<std::string> bucket_labels = labels_;
  bucket_labels.push_back("le");
  absl::MutexLock lock(&mu_);
  for (const auto& [values, histogram] : children_) {
    Histogram::Snapshot s = histogram->Read();
    LabelValues bucket_values = values;
    bucket_values.push_back("");
    for (size_t i = 0; i < s.cumulative.size(); ++i) {
      bucket_values.back() =
          i < bounds_.size() ? FormatValue(bounds_[i]) : "+Inf";
      *out += fmt::format(
          "{} {}\n", Series(name_ + "_bucket", bucket_labels, bucket_values),
          s.cumulative[i]);
    }
    *out += fmt::format("{} {}\n", Series(name_ + "_sum", labels_, values),
                        FormatValue(s.sum));
    *out += fmt::format("{} {}\n", Series(name_ + "_count", labels_, values),
                        s.cumulative.back());
  }
}

void RenderSampled(std::string* out, const std::string& name,
                   const std::string& help, const std::string& type,
                   const std::vector<std::string>& labels,
                   const std::vector<std::pair<LabelValues, double>>& samples) {
  RenderHeader(out, name, help, type.c_str());
  for (const auto& [values, value] : samples) {
    *out += fmt::format("{} {}\n", Series(name, labels, values),
                        FormatValue(value));
  }
}

void RenderGauge(std::string* out, const std::string& name,
                 const std::string& help,
                 const std::vector<std::string>& labels,
                 const std::vector<std::pair<LabelValues, double>>& samples) {
  RenderSampled(out, name, help, "gauge", labels, samples);
}

std::vector<double> LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
          0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
}

std::vector<double> SizeBuckets() {
  return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
}

}  // namespace baton::metrics
