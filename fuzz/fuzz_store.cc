// The store's record decoding, by the path batond takes at start: the
// fuzzed input is written as raw key/value pairs into a fresh LevelDB
// directory, and a real Server opens it, checks its format, migrates it and
// resumes every unfinished transaction in it. A damaged store must be
// refused with a status (DATA_LOSS naming the key, as a rule), never crash
// batond or make it act on a half-read record.
//
// Input: alternating keys and values, each as FuzzedDataProvider's
// ConsumeRandomLengthString reads them (a backslash and any other byte ends
// one; two backslashes are one). fuzz/make_seeds writes real stores so.
#include <fuzzer/FuzzedDataProvider.h>
#include <leveldb/db.h>
#include <leveldb/write_batch.h>
#include <stdlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "coordinator/server.h"
#include "fuzz/fuzz_server.h"

namespace {

const std::string& Scratch() {
  static const std::string* const dir = [] {
    baton::fuzz::QuietLogs();
    char pattern[] = "/tmp/baton-fuzz-store-XXXXXX";
    if (mkdtemp(pattern) == nullptr) std::abort();
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(Scratch(), ec);
    });
    return new std::string(pattern);
  }();
  return *dir;
}

bool WriteStore(const std::string& dir, FuzzedDataProvider* input) {
  leveldb::Options options;
  options.create_if_missing = true;
  leveldb::DB* raw = nullptr;
  if (!leveldb::DB::Open(options, dir, &raw).ok()) return false;
  std::unique_ptr<leveldb::DB> db(raw);
  leveldb::WriteBatch batch;
  while (input->remaining_bytes() > 0) {
    const std::string key = input->ConsumeRandomLengthString(512);
    const std::string value = input->ConsumeRandomLengthString(1 << 16);
    batch.Put(key, value);
  }
  return db->Write(leveldb::WriteOptions(), &batch).ok();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string dir = Scratch() + "/data";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  FuzzedDataProvider input(data, size);
  if (!WriteStore(dir, &input)) return 0;

  baton::ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.data_dir = dir;
  std::unique_ptr<baton::Server> server;
  absl::Status status = baton::Server::Start(options, &server);
  if (server != nullptr) server->Shutdown();
  (void)status;
  return 0;
}
