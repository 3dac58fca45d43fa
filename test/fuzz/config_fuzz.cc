// libFuzzer target: a config document (YAML or JSON, as a file or an Admin API body holds)
// through the config tree and the model parser: never a crash, and every error reported names
// a place (Diagnostics::format maps paths back to lines). What parses is written back as YAML
// (the Admin API's export) and must read again as the same tree.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "config/config_tree.h"
#include "config/model_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace portico::config;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const EnvLookup env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "SET") return std::string("value");
    return std::nullopt;
  };
  ConfigTree tree;
  Diagnostics diag;
  parseConfigText(text, "fuzz.yaml", env, tree, diag);
  if (diag.empty()) {
    const Config config = parseModel(tree.root, diag);
    (void)config;
    if (tree.secrets.empty()) {
      ConfigTree again;
      Diagnostics again_diag;
      parseConfigText(toYaml(tree.root), "again.yaml", env, again, again_diag);
      if (!again_diag.empty() || again.root != tree.root) std::abort();
    }
  }
  (void)diag.format();
  return 0;
}
