#include "conformance/target/qmp_client.h"

#include <fmt/format.h>

#include <algorithm>

namespace vmem::conformance {

namespace {

using nlohmann::json;

// nlohmann's dump() throws on invalid UTF-8 by default; the harness has no exceptions.
std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string string_field(const json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string("?");
}

}  // namespace

QmpClient::QmpClient(std::unique_ptr<LineChannel> channel) : channel_(std::move(channel)) {
  channel_->on_async([this](std::string_view line) { return handle_async(line); });
}

bool QmpClient::handle_async(std::string_view line) {
  // Cheap test first: replies are far more common than events and need no second parse.
  if (line.find("\"event\"") == std::string_view::npos) return false;
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("event")) return false;
  events_.push_back(std::move(j));
  return true;
}

Status QmpClient::handshake() {
  auto line = channel_->read_line();
  if (!line.has_value()) return unexpected(line.error());
  json greeting = json::parse(*line, nullptr, false);
  if (greeting.is_discarded() || !greeting.is_object() || !greeting.contains("QMP")) {
    return unexpected(Error{fmt::format("QMP: expected the greeting, got '{}'", *line)});
  }
  greeting_ = std::move(greeting);
  auto r = execute("qmp_capabilities");
  if (!r.has_value()) return unexpected(r.error());
  return ok();
}

Result<json> QmpClient::execute(std::string_view command, const json& arguments) {
  // "execute" first, as people write it; nlohmann's objects would sort the keys.
  std::string request = fmt::format("{{\"execute\":{}", dump(json(std::string(command))));
  if (!arguments.is_null()) request += fmt::format(",\"arguments\":{}", dump(arguments));
  request += "}";
  auto line = channel_->call(request);
  if (!line.has_value()) return unexpected(line.error());
  json reply = json::parse(*line, nullptr, false);
  if (reply.is_discarded() || !reply.is_object()) {
    return unexpected(Error{fmt::format("QMP {}: the reply is not a JSON object: '{}'", command,
                                        line->substr(0, 200))});
  }
  if (const auto it = reply.find("return"); it != reply.end()) return *it;
  if (const auto it = reply.find("error"); it != reply.end() && it->is_object()) {
    return unexpected(Error{fmt::format("QMP {}: {}: {}", command, string_field(*it, "class"),
                                        string_field(*it, "desc"))});
  }
  return unexpected(Error{fmt::format("QMP {}: a reply with neither return nor error: '{}'",
                                      command, line->substr(0, 200))});
}

Result<json> QmpClient::wait_event(std::string_view name, std::chrono::milliseconds bound) {
  auto find = [&] {
    return std::find_if(events_.begin(), events_.end(), [&](const json& e) {
      const auto it = e.find("event");
      return it != e.end() && it->is_string() && it->get<std::string>() == name;
    });
  };
  auto done = channel_->wait_until([&] { return find() != events_.end(); }, bound);
  if (!done.has_value()) return unexpected(done.error());
  const auto it = find();
  if (it == events_.end()) {
    return unexpected(Error{fmt::format("QMP: no {} event within {} ms", name, bound.count())});
  }
  json event = std::move(*it);
  events_.erase(events_.begin(), it + 1);
  return event;
}

std::vector<json> QmpClient::take_events() {
  std::vector<json> out(std::make_move_iterator(events_.begin()),
                        std::make_move_iterator(events_.end()));
  events_.clear();
  return out;
}

}  // namespace vmem::conformance
