#include "coordinator/request_validation.h"

#include <boost/test/unit_test.hpp>

#include "common/limits.h"

namespace baton {
namespace {

bool Mentions(const absl::Status& s, const std::string& word) {
  return std::string(s.message()).find(word) != std::string::npos;
}

BOOST_AUTO_TEST_SUITE(request_validation)

BOOST_AUTO_TEST_CASE(begin) {
  v1::BeginRequest r;
  BOOST_TEST(absl::IsInvalidArgument(Validate(r)));
  BOOST_TEST(Mentions(Validate(r), "name"));
  r.set_name("transfer");
  BOOST_TEST(Validate(r).ok());
  r.set_name(std::string(limits::kMaxNameBytes + 1, 'n'));
  BOOST_TEST(Mentions(Validate(r), "limit"));
  r.set_name("transfer");
  r.set_timeout_ms(limits::kMaxTimeoutMs + 1);
  BOOST_TEST(absl::IsInvalidArgument(Validate(r)));
  r.set_timeout_ms(0);
  r.set_protocol(static_cast<v1::Protocol>(99));
  BOOST_TEST(absl::IsInvalidArgument(Validate(r)));
}

BOOST_AUTO_TEST_CASE(xid_fields) {
  v1::CommitRequest commit;
  BOOST_TEST(Mentions(Validate(commit), "xid is required"));
  commit.set_xid("not-an-xid");
  BOOST_TEST(Mentions(Validate(commit), "malformed"));
  commit.set_xid("0-1-1");
  BOOST_TEST(Validate(commit).ok());
}

BOOST_AUTO_TEST_CASE(register_branch) {
  v1::RegisterBranchRequest r;
  r.set_xid("0-1-1");
  BOOST_TEST(Mentions(Validate(r), "resource"));
  r.set_resource("bank-a");
  BOOST_TEST(Validate(r).ok());
  r.set_application_data(
      std::string(limits::kMaxApplicationDataBytes + 1, 'd'));
  BOOST_TEST(Mentions(Validate(r), "application_data"));
}

BOOST_AUTO_TEST_CASE(report_branch) {
  v1::ReportBranchRequest r;
  r.set_xid("0-1-1");
  BOOST_TEST(Mentions(Validate(r), "branch_id"));
  r.set_branch_id(1);
  BOOST_TEST(Mentions(Validate(r), "outcome"));
  r.set_outcome(v1::PHASE_ONE_OUTCOME_PREPARED);
  BOOST_TEST(Validate(r).ok());
}

BOOST_AUTO_TEST_CASE(hello) {
  v1::Hello h;
  h.set_service("bank");
  h.set_instance_id("bank-1");
  BOOST_TEST(Mentions(Validate(h), "resources"));
  h.add_resources("bank-a");
  BOOST_TEST(Validate(h).ok());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
