#pragma once
// The factory of a filter that needs only its typed config: keeps the config (immutable, shared
// by every worker) and makes a filter that refers to it, per request.
#include <memory>
#include <utility>

#include "api/filter.h"

namespace portico::filters {

template <class FilterT, class ConfigT>
class ConfigFactory final : public api::FilterFactory {
 public:
  explicit ConfigFactory(ConfigT config) : config_(std::move(config)) {}
  std::unique_ptr<api::Filter> create() const override {
    return std::make_unique<FilterT>(config_);
  }

 private:
  ConfigT config_;
};

}  // namespace portico::filters
