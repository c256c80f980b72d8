#include "coordinator/console/console_api.h"

#include <atomic>
#include <charconv>
#include <chrono>
#include <memory>

#include "common/limits.h"
#include "common/list_filter.h"
#include "coordinator/recent_rates.h"
#include "fmt/format.h"
#include "google/protobuf/util/json_util.h"

namespace baton::console {
namespace {

constexpr auto kCallDeadline = std::chrono::seconds(10);

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options)
           .ok()) {
    return "{}";
  }
  return json;
}

// The HTTP status for a call that failed with `code`.
int HttpStatusOf(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::ALREADY_EXISTS:
      return 409;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    default:
      return 500;
  }
}

// One node's answer to a fanned-out call.
template <typename Response>
struct NodeAnswer {
  const FleetNode* node;
  grpc::Status status;
  Response response;
};

// Calls each of `asks` (a node and its request) at once, asynchronously,
// and hands every answer to `all` once the last is in, on a gRPC thread.
// `start` makes one call: (stubs, context, request, response, done).
template <typename Request, typename Response, typename Start>
void FanOut(const Caller& caller,
            std::vector<std::pair<const FleetNode*, Request>> asks, Start start,
            std::function<void(std::vector<NodeAnswer<Response>>)> all) {
  struct Slot {
    grpc::ClientContext context;
    std::shared_ptr<NodeStubs> stubs;  // Held while the call is in flight.
    Request request;
    NodeAnswer<Response> answer;
  };
  struct State {
    explicit State(size_t n) : slots(n) {}
    std::shared_ptr<const Fleet> fleet;  // What the answers' nodes are in.
    std::vector<Slot> slots;
    std::atomic<size_t> remaining;
    std::function<void(std::vector<NodeAnswer<Response>>)> all;
  };
  if (asks.empty()) return all({});
  auto state = std::make_shared<State>(asks.size());
  state->fleet = caller.fleet;
  state->remaining = asks.size();
  state->all = std::move(all);
  for (size_t i = 0; i < asks.size(); ++i) {
    Slot& slot = state->slots[i];
    slot.request = std::move(asks[i].second);
    slot.answer.node = asks[i].first;
    slot.stubs = caller.nodes->At(slot.answer.node->address);
    slot.context.AddMetadata("authorization", "Bearer " + caller.admin_token);
    slot.context.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
  }
  // Started only once every slot is set up: an answer may come at once.
  for (Slot& slot : state->slots) {
    start(slot.stubs.get(), &slot.context, &slot.request, &slot.answer.response,
          [state, &slot](grpc::Status status) {
            slot.answer.status = std::move(status);
            if (state->remaining.fetch_sub(1) != 1) return;
            std::vector<NodeAnswer<Response>> answers;
            for (Slot& s : state->slots) answers.push_back(std::move(s.answer));
            state->all(std::move(answers));
          });
  }
}

// Every node of the fleet, each with `request`.
template <typename Request>
std::vector<std::pair<const FleetNode*, Request>> EveryNode(
    const Caller& caller, const Request& request) {
  std::vector<std::pair<const FleetNode*, Request>> asks;
  for (const FleetNode& node : caller.fleet->nodes()) {
    asks.push_back({&node, request});
  }
  return asks;
}

// The nodes that did not answer, as the "missing" array of a body.
std::string MissingJson(const std::vector<const FleetNode*>& nodes,
                        const std::vector<grpc::Status>& errors);

// The answers that failed, as MissingJson names them.
template <typename Response>
std::string Missing(const std::vector<NodeAnswer<Response>>& answers) {
  std::vector<const FleetNode*> nodes;
  std::vector<grpc::Status> errors;
  for (const NodeAnswer<Response>& a : answers) {
    if (a.status.ok()) continue;
    nodes.push_back(a.node);
    errors.push_back(a.status);
  }
  return MissingJson(nodes, errors);
}

// Answers with the first failure when no node answered at all.
template <typename Response>
bool NoneAnswered(const std::vector<NodeAnswer<Response>>& answers,
                  const Respond& respond) {
  for (const NodeAnswer<Response>& a : answers) {
    if (a.status.ok()) return false;
  }
  const grpc::Status& first = answers.front().status;
  respond(JsonError(
      HttpStatusOf(first.error_code()),
      answers.size() == 1
          ? first.error_message()
          : fmt::format("no node answered; node {} at {}: {}",
                        answers.front().node->id, answers.front().node->address,
                        first.error_message())));
  return true;
}

// Makes one call to the node at `node` and answers with its response as
// JSON (through `reply`, which may pick a part of it), or with its error.
template <typename Request, typename Response, typename Start>
void Call(const Caller& caller, const FleetNode* node, Request request,
          Start start, std::function<HttpResponse(const Response&)> reply,
          Respond respond) {
  std::vector<std::pair<const FleetNode*, Request>> asks;
  asks.push_back({node, std::move(request)});
  FanOut<Request, Response>(
      caller, std::move(asks), std::move(start),
      [reply = std::move(reply), respond = std::move(respond),
       clustered = caller.fleet->clustered()](
          std::vector<NodeAnswer<Response>> answers) {
        const NodeAnswer<Response>& a = answers.front();
        if (a.status.ok()) return respond(reply(a.response));
        std::string message = a.status.error_message();
        if (clustered &&
            a.status.error_code() == grpc::StatusCode::UNAVAILABLE) {
          message = fmt::format(
              "node {} at {}, which owns this transaction's shard, did not "
              "answer ({}); the transaction waits for it",
              a.node->id, a.node->address, message);
        }
        respond(JsonError(HttpStatusOf(a.status.error_code()), message));
      });
}

// The node that owns `xid`'s shard; this one when no owner is known.
const FleetNode* OwnerOf(const Caller& caller, std::string_view xid) {
  const FleetNode* owner = caller.fleet->OwnerOf(Fleet::ShardOf(xid));
  return owner != nullptr ? owner : &caller.fleet->Entry();
}

template <typename Response>
std::function<HttpResponse(const Response&)> Whole() {
  return [](const Response& r) { return Json(200, ToJson(r)); };
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The length of the well-formed UTF-8 sequence at the start of `text`, or
// 0 if there is none there.
size_t Utf8Length(std::string_view text) {
  const auto byte = [&](size_t i) {
    return static_cast<unsigned char>(text[i]);
  };
  const unsigned char lead = byte(0);
  size_t length = lead < 0x80           ? 1
                  : (lead >> 5) == 0x6  ? 2
                  : (lead >> 4) == 0xE  ? 3
                  : (lead >> 3) == 0x1E ? 4
                                        : 0;
  if (length == 0 || length > text.size() || (length == 2 && lead < 0xC2)) {
    return 0;
  }
  for (size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
  }
  if (length == 3) {
    const unsigned code = (lead & 0x0F) << 12 | (byte(1) & 0x3F) << 6;
    if (code < 0x800 || (code >= 0xD800 && code < 0xE000)) return 0;
  }
  if (length == 4) {
    const unsigned code = (lead & 0x07) << 18 | (byte(1) & 0x3F) << 12;
    if (code < 0x10000 || code > 0x10FFFF) return 0;
  }
  return length;
}

// A JSON string literal of `text`, for the few bodies written by hand;
// bytes that are not UTF-8 become U+FFFD, so the body always parses.
std::string Quoted(std::string_view text) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size();) {
    const size_t length = Utf8Length(text.substr(i));
    if (length == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (length > 1) {
      out += text.substr(i, length);
      i += length;
      continue;
    }
    const char c = text[i++];
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string MissingJson(const std::vector<const FleetNode*>& nodes,
                        const std::vector<grpc::Status>& errors) {
  std::string out = "[";
  for (size_t i = 0; i < nodes.size(); ++i) {
    std::string shards;
    for (uint32_t shard : nodes[i]->shards) {
      shards += (shards.empty() ? "" : ",") + std::to_string(shard);
    }
    out += fmt::format(
        "{}{{\"node\":{},\"address\":{},\"shards\":[{}],\"error\":{}}}",
        i == 0 ? "" : ",", nodes[i]->id, Quoted(nodes[i]->address), shards,
        Quoted(errors[i].error_message()));
  }
  return out + "]";
}

}  // namespace

ConsoleNodes::ConsoleNodes(
    std::string self_address, std::shared_ptr<NodeStubs> self,
    std::shared_ptr<grpc::ChannelCredentials> peer_credentials)
    : self_address_(std::move(self_address)),
      self_(std::move(self)),
      peer_credentials_(peer_credentials != nullptr
                            ? std::move(peer_credentials)
                            : grpc::InsecureChannelCredentials()) {}

std::shared_ptr<NodeStubs> ConsoleNodes::At(const std::string& address) {
  if (address == self_address_) return self_;
  absl::MutexLock lock(&mu_);
  std::shared_ptr<NodeStubs>& stubs = peers_[address];
  if (stubs == nullptr) {
    grpc::ChannelArguments arguments;
    arguments.SetMaxReceiveMessageSize(limits::kMaxMessageBytes);
    std::shared_ptr<grpc::Channel> channel =
        grpc::CreateCustomChannel(address, peer_credentials_, arguments);
    stubs = std::make_shared<NodeStubs>(
        NodeStubs{v1::AdminService::NewStub(channel),
                  v1::TransactionService::NewStub(channel)});
  }
  return stubs;
}

void ConsoleNodes::KeepOnly(const Fleet& fleet) {
  absl::MutexLock lock(&mu_);
  std::erase_if(peers_, [&](const auto& entry) {
    for (const FleetNode& node : fleet.nodes()) {
      if (node.address == entry.first) return false;
    }
    return true;
  });
}

HttpResponse Json(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.content_type = "application/json";
  response.headers.push_back({"Cache-Control", "no-store"});
  response.body = std::move(body);
  return response;
}

HttpResponse JsonError(int status, std::string_view message) {
  return Json(status, "{\"error\":" + Quoted(message) + "}");
}

std::string PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+' && plus_is_space) {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() &&
               HexDigit(text[i + 1]) >= 0 && HexDigit(text[i + 2]) >= 0) {
      out +=
          static_cast<char>(HexDigit(text[i + 1]) * 16 + HexDigit(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

Query ParseQuery(std::string_view query) {
  Query out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? "" : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    out.emplace(
        PercentDecode(pair.substr(0, eq)),
        eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1)));
  }
  return out;
}

void Overview(const Caller& caller, Respond respond) {
  v1::GetStatsRequest request;
  request.set_recent_seconds(RecentRates::kSeconds);
  FanOut<v1::GetStatsRequest, v1::GetStatsResponse>(
      caller, EveryNode(caller, request),
      [](NodeStubs* at, auto* c, auto* q, auto* r, auto done) {
        at->admin->async()->GetStats(c, q, r, std::move(done));
      },
      [respond = std::move(respond), topology = caller.topology](
          std::vector<NodeAnswer<v1::GetStatsResponse>> answers) {
        if (NoneAnswered(answers, respond)) return;
        std::map<uint32_t, v1::GetStatsResponse> by_node;
        std::vector<std::vector<v1::SecondCounts>> seconds;
        for (NodeAnswer<v1::GetStatsResponse>& a : answers) {
          if (!a.status.ok()) continue;
          seconds.emplace_back(a.response.recent().begin(),
                               a.response.recent().end());
          a.response.clear_recent();
          by_node[a.node->id] = std::move(a.response);
        }
        v1::GetStatsResponse stats = MergeStats(by_node);
        std::string body = "{\"stats\":" + ToJson(stats);
        if (!stats.oldest_unfinished_xid().empty()) {
          body +=
              fmt::format(",\"oldest\":{{\"xid\":{},\"begun_unix_ms\":\"{}\"}}",
                          Quoted(stats.oldest_unfinished_xid()),
                          stats.oldest_unfinished_begun_unix_ms());
        }
        body += ",\"rate\":[";
        bool first = true;
        for (const v1::SecondCounts& s : SumSeconds(seconds)) {
          body += fmt::format(
              "{}{{\"t_unix_ms\":\"{}\",\"begun\":{},\"committed\":{},"
              "\"rolled_back\":{}}}",
              first ? "" : ",", s.end_unix_ms(), s.begun(), s.committed(),
              s.rolled_back());
          first = false;
        }
        body += "]";
        if (topology) body += ",\"topology\":" + ToJson(*topology);
        body += ",\"missing\":" + Missing(answers);
        respond(Json(200, body + "}"));
      });
}

namespace {

using ListAnswers = std::vector<NodeAnswer<v1::ListTransactionsResponse>>;

// What ListTransactions makes of each node's page.
void ListAt(const Caller& caller, const std::vector<FleetListing::Ask>& asks,
            std::function<void(ListAnswers)> all) {
  std::vector<std::pair<const FleetNode*, v1::ListTransactionsRequest>> calls;
  for (const FleetListing::Ask& ask : asks) {
    calls.push_back({ask.node, ask.request});
  }
  FanOut<v1::ListTransactionsRequest, v1::ListTransactionsResponse>(
      caller, std::move(calls),
      [](NodeStubs* at, auto* c, auto* q, auto* r, auto done) {
        at->admin->async()->ListTransactions(c, q, r, std::move(done));
      },
      std::move(all));
}

// One page across every node (FleetListing): each node's page, merged;
// then those taken in part asked again for that part, for their tokens.
void ListAcross(const Caller& caller,
                const v1::ListTransactionsRequest& request, Respond respond) {
  std::optional<FleetListing> started =
      FleetListing::Start(caller.fleet, request);
  if (!started) {
    return respond(JsonError(
        400, "page_token is not one the console gave for this cluster"));
  }
  auto listing = std::make_shared<FleetListing>(std::move(*started));
  ListAt(caller, listing->FirstRound(),
         [caller, listing, respond = std::move(respond)](ListAnswers first) {
           if (!first.empty() && NoneAnswered(first, respond)) return;
           for (const auto& a : first) {
             if (a.status.ok()) listing->Answered(a.node->id, a.response);
           }
           ListAt(caller, listing->Merge(),
                  [listing, first = std::move(first),
                   respond = std::move(respond)](ListAnswers again) {
                    ListAnswers failed;
                    for (auto& a : first) {
                      if (!a.status.ok()) failed.push_back(std::move(a));
                    }
                    for (auto& a : again) {
                      if (a.status.ok()) {
                        listing->Reanswered(a.node->id, a.response);
                      } else {
                        failed.push_back(std::move(a));
                      }
                    }
                    std::string body = ToJson(listing->Finish());
                    body.pop_back();  // The closing brace.
                    body += std::string(body.size() > 1 ? "," : "") +
                            "\"missing\":" + Missing(failed) + "}";
                    respond(Json(200, std::move(body)));
                  });
         });
}

}  // namespace

void ListTransactions(const Caller& caller, const Query& query,
                      int64_t now_unix_ms, Respond respond) {
  v1::ListTransactionsRequest request;
  for (const auto& [name, value] : query) {
    if (value.empty()) continue;
    int64_t ms = 0;
    v1::Protocol protocol;
    if (name == "status") {
      if (!AddStatusWord(value, &request)) {
        return respond(JsonError(400, "unknown status '" + value + "'"));
      }
    } else if (name == "protocol") {
      if (!ProtocolWord(value, &protocol)) {
        return respond(JsonError(400, "protocol must be 2pc, tcc or saga"));
      }
      request.set_protocol(protocol);
    } else if (name == "older_than") {
      if (!ParseDuration(value, &ms)) {
        return respond(
            JsonError(400, "older than takes 30s, 5m, 2h, 1d or milliseconds"));
      }
      request.set_begun_before_unix_ms(now_unix_ms - ms);
    } else if (name == "name") {
      request.set_name(value);
    } else if (name == "resource") {
      request.set_resource(value);
    } else if (name == "page_token") {
      request.set_page_token(value);
    } else if (name == "limit") {
      uint32_t limit = 0;
      auto [end, ec] =
          std::from_chars(value.data(), value.data() + value.size(), limit);
      if (ec != std::errc() || end != value.data() + value.size() ||
          limit > 1000) {
        return respond(JsonError(400, "limit is a number up to 1000"));
      }
      request.set_limit(limit);
    } else {
      return respond(JsonError(400, "unknown filter '" + name + "'"));
    }
  }
  ListAcross(caller, request, std::move(respond));
}

void ShowTransaction(const Caller& caller, const std::string& xid,
                     Respond respond) {
  v1::GetTransactionRequest request;
  request.set_xid(xid);
  request.set_max_response_bytes(limits::kMaxMessageBytes);
  Call<v1::GetTransactionRequest, v1::GetTransactionResponse>(
      caller, OwnerOf(caller, xid), std::move(request),
      [](NodeStubs* at, auto* c, auto* q, auto* r, auto done) {
        at->transactions->async()->GetTransaction(c, q, r, std::move(done));
      },
      [](const v1::GetTransactionResponse& r) {
        return Json(200, ToJson(r.transaction()));
      },
      std::move(respond));
}

void Act(const Caller& caller, const std::string& xid, std::string_view action,
         const std::string& reason, Respond respond) {
  using Method = void (v1::AdminService::StubInterface::async_interface::*)(
      grpc::ClientContext*, const v1::OperatorRequest*, v1::OperatorResponse*,
      std::function<void(grpc::Status)>);
  using Async = v1::AdminService::StubInterface::async_interface;
  static const auto* const methods = new std::map<std::string_view, Method>{
      {"retry", &Async::Retry},
      {"pause", &Async::Pause},
      {"resume", &Async::Resume},
      {"force-commit", &Async::ForceCommit},
      {"force-rollback", &Async::ForceRollback},
      {"forget", &Async::Forget},
  };
  auto it = methods->find(action);
  if (it == methods->end()) {
    return respond(JsonError(404, fmt::format("no action '{}'", action)));
  }
  v1::OperatorRequest request;
  request.set_xid(xid);
  request.set_reason(reason);
  request.set_actor(caller.actor);
  // The console asked its operator to confirm before it sends this.
  request.set_force(action == "forget");
  Call<v1::OperatorRequest, v1::OperatorResponse>(
      caller, OwnerOf(caller, xid), std::move(request),
      [method = it->second](NodeStubs* at, auto* c, auto* q, auto* r,
                            auto done) {
        (at->admin->async()->*method)(c, q, r, std::move(done));
      },
      Whole<v1::OperatorResponse>(), std::move(respond));
}

void Participants(const Caller& caller, Respond respond) {
  FanOut<v1::ListParticipantsRequest, v1::ListParticipantsResponse>(
      caller, EveryNode(caller, v1::ListParticipantsRequest()),
      [](NodeStubs* at, auto* c, auto* q, auto* r, auto done) {
        at->admin->async()->ListParticipants(c, q, r, std::move(done));
      },
      [respond = std::move(respond)](
          std::vector<NodeAnswer<v1::ListParticipantsResponse>> answers) {
        if (NoneAnswered(answers, respond)) return;
        std::map<uint32_t, v1::ListParticipantsResponse> by_node;
        for (auto& a : answers) {
          if (a.status.ok()) by_node[a.node->id] = std::move(a.response);
        }
        std::map<std::string, std::string> attached_to;
        v1::ListParticipantsResponse merged =
            MergeParticipants(by_node, &attached_to);
        std::string body = "{\"participants\":[";
        for (int i = 0; i < merged.participants_size(); ++i) {
          const v1::Participant& p = merged.participants(i);
          std::string one = ToJson(p);
          one.pop_back();
          body += std::string(i == 0 ? "" : ",") + one +
                  (one.size() > 1 ? "," : "") +
                  "\"nodes\":" + Quoted(attached_to[p.instance_id()]) + "}";
        }
        respond(Json(200, body + "],\"missing\":" + Missing(answers) + "}"));
      });
}

}  // namespace baton::console
