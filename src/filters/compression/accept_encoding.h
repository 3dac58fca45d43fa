#pragma once
// Choosing a response's content coding from the client's Accept-Encoding (RFC 9110 §12.5.3):
// q-values, `*` for codings not named, `identity`. The server's own preference breaks ties.
#include <optional>
#include <span>
#include <string_view>

#include "filters/compression/codec.h"

namespace portico::filters::compression {

// The coding of `offered` (in the server's order of preference) with the highest q-value above
// zero in `accept_encoding`; nullopt when the client accepts none of them (or sent no header).
std::optional<Coding> chooseCoding(std::string_view accept_encoding,
                                   std::span<const Coding> offered);

}  // namespace portico::filters::compression
