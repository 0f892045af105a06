// A QMP client (QEMU's JSON control protocol) over a LineChannel: the greeting, capability
// negotiation, commands, and the events QEMU sends on its own.
//
// Promises: every wait is bounded (the channel's timeout for a reply, an explicit bound for an
// event); a command's failure comes back as an error carrying QMP's class and desc; events that
// arrive while waiting for anything are kept, in order, until taken, so a RESET that overtakes
// the reply to its system_reset is not lost.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "conformance/target/line_channel.h"
#include "reference/base/result.h"

namespace vmem::conformance {

class QmpClient {
 public:
  // Takes the channel and installs its own asynchronous-line handler (objects with "event").
  explicit QmpClient(std::unique_ptr<LineChannel> channel);
  QmpClient(const QmpClient&) = delete;
  QmpClient& operator=(const QmpClient&) = delete;

  // Reads the greeting ({"QMP": ...}) and sends qmp_capabilities.
  Status handshake();
  const nlohmann::json& greeting() const { return greeting_; }

  // Runs `command` with `arguments` (an object, or null for none) and returns its "return"
  // value, or an error "<command>: <class>: <desc>".
  Result<nlohmann::json> execute(std::string_view command,
                                 const nlohmann::json& arguments = nullptr);

  // Waits up to `bound` for an event named `name` and returns it, removing it and every event
  // received before it. Expiry is an error but leaves the client usable.
  Result<nlohmann::json> wait_event(std::string_view name, std::chrono::milliseconds bound);
  // The events received and not yet taken, oldest first.
  std::vector<nlohmann::json> take_events();
  void clear_events() { events_.clear(); }

  LineChannel& channel() { return *channel_; }

 private:
  bool handle_async(std::string_view line);

  std::unique_ptr<LineChannel> channel_;
  nlohmann::json greeting_;
  std::deque<nlohmann::json> events_;
};

}  // namespace vmem::conformance
