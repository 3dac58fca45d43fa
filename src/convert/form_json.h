#pragma once
// application/x-www-form-urlencoded <-> JSON. A form is an object of strings; a repeated key is
// an array of them. JSON to a form: an object whose values are scalars (written as text) or
// arrays of scalars (repeated keys); a nested object is written as its JSON text.
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace portico::convert {

// Refuses a key or value that is not UTF-8 once percent-decoded (`%FF`): JSON holds only
// UTF-8, and a form's bytes are not guessed at.
Result<nlohmann::ordered_json> formToJson(std::string_view form);
Result<std::string> jsonToForm(const nlohmann::ordered_json& value);

}  // namespace portico::convert
