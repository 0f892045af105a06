// vmemcheck-adapter: the reference device served over the adapter protocol on stdin/stdout
// (docs/adapter-protocol.md). `vmemcheck conform --target adapter:vmemcheck-adapter` runs the
// suite through it, which is how the protocol is shown to be complete; a VMM's own adapter
// speaks the same lines.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <string>

#include "conformance/adapter/adapter_server.h"
#include "conformance/target/reference_target.h"

int main(int argc, char** argv) {
  CLI::App app{"vmemcheck-adapter: the reference virtio-mem device over the adapter protocol"};
  std::string transport = "pci", profile = "spec", fault;
  app.add_option("--transport", transport, "pci | mmio")
      ->check(CLI::IsMember({"pci", "mmio"}))
      ->capture_default_str();
  app.add_option("--profile", profile, "spec | qemu | qemu-7.2")->capture_default_str();
  app.add_option("--fault", fault, "a named fault (the mutants build only)");
  CLI11_PARSE(app, argc, argv);

  const auto p = vmem::profile_from_name(profile);
  if (!p) {
    fmt::print(stderr, "vmemcheck-adapter: unknown profile '{}'\n", profile);
    return 2;
  }
  vmem::conformance::ReferenceTarget target(
      {transport == "pci" ? vmem::conformance::Transport::Pci : vmem::conformance::Transport::Mmio,
       *p, fault, vmem::BackingKind::Anonymous});
  vmem::conformance::AdapterServer server(target);
  std::ios::sync_with_stdio(false);
  std::string line;
  while (!server.done() && std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    for (const std::string& out : server.handle(line))
      std::cout << out << '\n';
    std::cout.flush();
  }
  return 0;
}
