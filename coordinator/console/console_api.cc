#include "coordinator/console/console_api.h"

#include <charconv>
#include <chrono>
#include <memory>

#include "common/limits.h"
#include "common/list_filter.h"
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

// Makes one asynchronous call and answers with its response as JSON
// (through `reply`, which may pick a part of it), or with its error.
template <typename Request, typename Response, typename Start>
void Call(const Caller& caller, Request request, Start start,
          std::function<HttpResponse(const Response&)> reply, Respond respond) {
  struct State {
    grpc::ClientContext context;
    Request request;
    Response response;
  };
  auto state = std::make_shared<State>();
  state->request = std::move(request);
  state->context.AddMetadata("authorization", "Bearer " + caller.admin_token);
  state->context.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
  start(&state->context, &state->request, &state->response,
        [state, reply = std::move(reply),
         respond = std::move(respond)](grpc::Status status) {
          if (!status.ok()) {
            respond(JsonError(HttpStatusOf(status.error_code()),
                              status.error_message()));
            return;
          }
          respond(reply(state->response));
        });
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

}  // namespace

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

void Overview(const Caller& caller, std::vector<ConsoleRates::Second> rates,
              Respond respond) {
  auto reply = [rates = std::move(rates)](const v1::GetStatsResponse& stats) {
    std::string body = "{\"stats\":" + ToJson(stats);
    if (!stats.oldest_unfinished_xid().empty()) {
      body += fmt::format(",\"oldest\":{{\"xid\":{},\"begun_unix_ms\":\"{}\"}}",
                          Quoted(stats.oldest_unfinished_xid()),
                          stats.oldest_unfinished_begun_unix_ms());
    }
    body += ",\"rate\":[";
    for (size_t i = 0; i < rates.size(); ++i) {
      const ConsoleRates::Second& s = rates[i];
      body += fmt::format(
          "{}{{\"t_unix_ms\":\"{}\",\"begun\":{},\"committed\":{},"
          "\"rolled_back\":{}}}",
          i == 0 ? "" : ",", s.unix_ms, s.during.begun, s.during.committed,
          s.during.rolled_back);
    }
    return Json(200, body + "]}");
  };
  Call<v1::GetStatsRequest, v1::GetStatsResponse>(
      caller, {},
      [admin = caller.admin](auto* c, auto* q, auto* r, auto done) {
        admin->async()->GetStats(c, q, r, std::move(done));
      },
      std::move(reply), std::move(respond));
}

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
  Call<v1::ListTransactionsRequest, v1::ListTransactionsResponse>(
      caller, std::move(request),
      [admin = caller.admin](auto* c, auto* q, auto* r, auto done) {
        admin->async()->ListTransactions(c, q, r, std::move(done));
      },
      Whole<v1::ListTransactionsResponse>(), std::move(respond));
}

void ShowTransaction(const Caller& caller, const std::string& xid,
                     Respond respond) {
  v1::GetTransactionRequest request;
  request.set_xid(xid);
  request.set_max_response_bytes(limits::kMaxMessageBytes);
  Call<v1::GetTransactionRequest, v1::GetTransactionResponse>(
      caller, std::move(request),
      [transactions = caller.transactions](auto* c, auto* q, auto* r,
                                           auto done) {
        transactions->async()->GetTransaction(c, q, r, std::move(done));
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
      caller, std::move(request),
      [admin = caller.admin, method = it->second](auto* c, auto* q, auto* r,
                                                  auto done) {
        (admin->async()->*method)(c, q, r, std::move(done));
      },
      Whole<v1::OperatorResponse>(), std::move(respond));
}

void Participants(const Caller& caller, Respond respond) {
  Call<v1::ListParticipantsRequest, v1::ListParticipantsResponse>(
      caller, {},
      [admin = caller.admin](auto* c, auto* q, auto* r, auto done) {
        admin->async()->ListParticipants(c, q, r, std::move(done));
      },
      Whole<v1::ListParticipantsResponse>(), std::move(respond));
}

}  // namespace baton::console
