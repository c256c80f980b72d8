#include "coordinator/listeners.h"

#include <boost/test/unit_test.hpp>

namespace baton {
namespace {

BOOST_AUTO_TEST_SUITE(listeners)

const std::vector<Listener> kWide = {{"--listen", "0.0.0.0:7420"},
                                     {"--admin-listen", ""},
                                     {"--metrics-listen", "127.0.0.1:9464"}};

BOOST_AUTO_TEST_CASE(plaintext_beyond_loopback_is_refused_and_named) {
  absl::Status s = CheckListeners({}, kWide);
  BOOST_TEST(absl::IsFailedPrecondition(s));
  BOOST_TEST(s.message().find("--listen 0.0.0.0:7420") != std::string::npos, s);
  BOOST_TEST(s.message().find("--tls-cert") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(loopback_or_insecure_is_let_through) {
  BOOST_TEST(CheckListeners({}, {{"--listen", "127.0.0.1:0"},
                                 {"--admin-listen", "[::1]:7421"},
                                 {"--metrics-listen", "localhost:9464"}})
                 .ok());
  BOOST_TEST(CheckListeners({.insecure = true}, kWide).ok());
}

BOOST_AUTO_TEST_CASE(a_client_ca_without_a_certificate_is_refused) {
  absl::Status s =
      CheckListeners({.tls = {.ca = "/nonexistent-is-not-read-first"}}, kWide);
  BOOST_TEST(absl::IsInvalidArgument(s), s);
}

BOOST_AUTO_TEST_CASE(peers_are_called_with_the_nodes_own_certificate) {
  ListenerSecurity security{
      .tls = {.cert = "node.pem", .key = "node.key", .ca = "clients.pem"},
      .peer_ca = "nodes.pem"};
  TlsFiles peer = PeerTlsFiles(security);
  BOOST_TEST(peer.cert == "node.pem");
  BOOST_TEST(peer.ca == "nodes.pem");
  security.peer_ca.clear();
  BOOST_TEST(PeerTlsFiles(security).ca == "clients.pem");
  BOOST_TEST(!PeerTlsFiles({}).client_enabled());
}

BOOST_AUTO_TEST_CASE(loopback_addresses) {
  for (const char* a :
       {"127.0.0.1:1", "127.9.9.9:80", "[::1]:7420", "localhost:7420"}) {
    BOOST_TEST(IsLoopbackListen(a), a);
  }
  for (const char* a : {"0.0.0.0:7420", "[::]:7420", "10.0.0.1:7420",
                        "baton-0.baton:7420", ":7420", "128.0.0.1:1"}) {
    BOOST_TEST(!IsLoopbackListen(a), a);
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
