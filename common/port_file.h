#ifndef BATON_COMMON_PORT_FILE_H_
#define BATON_COMMON_PORT_FILE_H_

#include <string>

namespace baton {

// Writes `port` to `path` atomically (write then rename), so a reader that
// polls for the file never sees it half written. Tests and scripts use it to
// find servers started on port 0.
bool WritePortFile(const std::string& path, int port);

}  // namespace baton

#endif  // BATON_COMMON_PORT_FILE_H_
