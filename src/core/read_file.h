#pragma once
// A whole file as text (configs, specs), or why it cannot be read.
#include <string>

#include "core/result.h"

namespace portico {

Result<std::string> readFile(const std::string& path);

}  // namespace portico
