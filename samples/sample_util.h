#ifndef BATON_SAMPLES_SAMPLE_UTIL_H_
#define BATON_SAMPLES_SAMPLE_UTIL_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

// What the sample services share.
namespace baton::samples {

// Parses repeated --seed KEY=N flags. Throws CLI::ValidationError.
std::map<std::string, int64_t> ParseSeed(const std::vector<std::string>& items);

// Serves `service` on `listen`, writes the bound port to `port_file` (if not
// empty), and returns when SIGINT or SIGTERM arrives. Returns an exit code.
// Call BlockStopSignals() first.
int ServeUntilSignal(const std::string& listen, const std::string& port_file,
                     grpc::Service* service);

}  // namespace baton::samples

#endif  // BATON_SAMPLES_SAMPLE_UTIL_H_
