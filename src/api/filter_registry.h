#pragma once
// The explicit list of filter types. No self-registration: builtins are added by
// filters::registerBuiltins().
#include <map>
#include <string>

#include "api/filter.h"

namespace portico::api {

class FilterRegistry {
 public:
  void add(FilterType type) { types_[type.name] = std::move(type); }
  const FilterType* find(const std::string& name) const {
    auto it = types_.find(name);
    return it == types_.end() ? nullptr : &it->second;
  }
  std::string names() const {
    std::string out;
    for (const auto& [name, _] : types_) out += out.empty() ? name : ", " + name;
    return out;
  }

 private:
  std::map<std::string, FilterType> types_;
};

}  // namespace portico::api
