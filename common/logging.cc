#include "common/logging.h"

#include <grpc/support/log.h>

#include "common/log_summary.h"
#include "fmt/format.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace baton {
namespace {

// gRPC core's own lines (a failed TLS handshake, a bad connection) come
// once per source line per 10 s, then as a count: a flood of bad
// connections must not flood the log.
void LogFromGrpc(gpr_log_func_args* args) {
  static LogSummary* const summary = new LogSummary();
  spdlog::level::level_enum level =
      args->severity == GPR_LOG_SEVERITY_ERROR  ? spdlog::level::err
      : args->severity == GPR_LOG_SEVERITY_INFO ? spdlog::level::info
                                                : spdlog::level::debug;
  summary->Log(level, fmt::format("grpc {}:{}", args->file, args->line),
               fmt::format("grpc: {}", args->message));
}

}  // namespace

void SetupLogging(const std::string& program, const std::string& level) {
  auto logger = spdlog::stderr_color_mt(program);
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ " + program + " %v");
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::flush_on(spdlog::level::info);
  gpr_set_log_function(&LogFromGrpc);
}

}  // namespace baton
