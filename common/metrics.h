#ifndef BATON_COMMON_METRICS_H_
#define BATON_COMMON_METRICS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

// Counters and histograms rendered in Prometheus' text format (version
// 0.0.4). Updates are lock-free atomics; only finding a labelled child takes
// a lock, so hot paths keep the child they use.
namespace baton::metrics {

// Label values, in the order of the family's label names.
using LabelValues = std::vector<std::string>;

class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// Cumulative buckets with fixed upper bounds, as Prometheus expects.
class Histogram {
 public:
  explicit Histogram(const std::vector<double>* bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // One per bound, then +Inf.
    double sum = 0;
  };
  Snapshot Read() const;

 private:
  const std::vector<double>* const bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds + 1 slots.
  std::atomic<double> sum_{0};
};

// A metric name with its labelled children. Children live as long as the
// family, so pointers to them may be kept.
template <typename T>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> labels,
         std::vector<double> bounds = {})
      : name_(std::move(name)),
        help_(std::move(help)),
        labels_(std::move(labels)),
        bounds_(std::move(bounds)) {}

  // The child for these label values (as many as the family's labels).
  // Every transaction's path looks children up, from every shard: once a
  // child exists, the lookup shares the lock instead of taking it.
  T* With(const LabelValues& values) {
    {
      absl::ReaderMutexLock lock(&mu_);
      auto it = children_.find(values);
      if (it != children_.end()) return it->second.get();
    }
    absl::MutexLock lock(&mu_);
    std::unique_ptr<T>& child = children_[values];
    if (child == nullptr) child = MakeChild();
    return child.get();
  }

  // Appends HELP, TYPE and one line per child (several for a histogram).
  void Render(std::string* out) const;

  // Counters only: the sum of the children whose `label`-th value is
  // `value`, or of every child for a negative `label`.
  uint64_t Sum(int label = -1, std::string_view value = {}) const;

 private:
  std::unique_ptr<T> MakeChild() const;

  const std::string name_;
  const std::string help_;
  const std::vector<std::string> labels_;
  const std::vector<double> bounds_;
  mutable absl::Mutex mu_;
  std::map<LabelValues, std::unique_ptr<T>> children_ ABSL_GUARDED_BY(mu_);
};

template <>
std::unique_ptr<Counter> Family<Counter>::MakeChild() const;
template <>
std::unique_ptr<Histogram> Family<Histogram>::MakeChild() const;
template <>
void Family<Counter>::Render(std::string* out) const;
template <>
uint64_t Family<Counter>::Sum(int label, std::string_view value) const;
template <>
void Family<Histogram>::Render(std::string* out) const;

// `name{a="x",b="y"}` with values escaped as the format requires.
std::string Series(const std::string& name,
                   const std::vector<std::string>& labels,
                   const LabelValues& values);

// Appends samples read at scrape time, of `type` ("gauge", or "counter"
// for a count kept elsewhere): HELP, TYPE and one line per sample.
void RenderSampled(std::string* out, const std::string& name,
                   const std::string& help, const std::string& type,
                   const std::vector<std::string>& labels,
                   const std::vector<std::pair<LabelValues, double>>& samples);
// RenderSampled of a gauge.
void RenderGauge(std::string* out, const std::string& name,
                 const std::string& help,
                 const std::vector<std::string>& labels,
                 const std::vector<std::pair<LabelValues, double>>& samples);

// Latency buckets in seconds, from 0.5 ms to 60 s.
std::vector<double> LatencyBuckets();
// Powers of two from 1 to 1024, for sizes.
std::vector<double> SizeBuckets();

}  // namespace baton::metrics

#endif  // BATON_COMMON_METRICS_H_
