#include "coordinator/admin_service.h"

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>

namespace baton {
namespace {

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace

grpc::ServerUnaryReactor* AdminServiceImpl::GetStats(
    grpc::CallbackServerContext* context, const v1::GetStatsRequest* request,
    v1::GetStatsResponse* response) {
  StoreStats stats = store_->Stats();
  response->set_store_syncs(stats.syncs);
  response->set_store_batches(stats.batches);
  response->set_live_transactions(manager_->LiveCount());
  response->set_cpu_seconds(CpuSeconds());
  response->set_resident_bytes(ResidentBytes());
  response->set_pid(static_cast<uint32_t>(getpid()));
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace baton
