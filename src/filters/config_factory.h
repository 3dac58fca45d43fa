#pragma once
// The factory of a filter that needs only its typed config: keeps the config (immutable, shared
// by every worker) and makes a filter that refers to it, per request.
#include <memory>
#include <utility>

#include "api/filter.h"

namespace portico::filters {

// A filter type that keeps no per-request state (only its config) says so with
// `static constexpr bool kStateless = true;`: one instance then serves every request.
template <class FilterT>
concept StatelessFilter = FilterT::kStateless;

template <class FilterT, class ConfigT>
class ConfigFactory final : public api::FilterFactory {
 public:
  explicit ConfigFactory(ConfigT config) : config_(std::move(config)) {
    if constexpr (StatelessFilter<FilterT>) shared_ = std::make_unique<FilterT>(config_);
  }
  api::FilterPtr create() const override {
    if constexpr (StatelessFilter<FilterT>) {
      return api::borrowFilter(*shared_);
    } else {
      return std::make_unique<FilterT>(config_);
    }
  }

 private:
  ConfigT config_;
  std::unique_ptr<FilterT> shared_;  // stateless filters only
};

}  // namespace portico::filters
