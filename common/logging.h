#ifndef BATON_COMMON_LOGGING_H_
#define BATON_COMMON_LOGGING_H_

#include <string>

namespace baton {

// Sends spdlog's default logger to stderr with a timestamped pattern naming
// `program`, at `level` (trace, debug, info, warn, error, critical). Lines of
// info and above are flushed at once, so a kill -9 loses none of them.
// gRPC core's own log lines go there too, at most one per source line per
// 10 s followed by a count of the rest.
void SetupLogging(const std::string& program, const std::string& level);

}  // namespace baton

#endif  // BATON_COMMON_LOGGING_H_
