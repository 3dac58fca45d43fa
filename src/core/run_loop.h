#pragma once
// A thread's event loop that outlives a handler's exception.
#include <cstddef>
#include <string_view>

namespace boost::asio {
class io_context;
}

namespace portico {

// Runs `io` until it stops or runs out of work. A handler that throws (a bug: nothing on the
// request path is meant to) is logged with `thread` and the loop goes on, as Asio allows after
// an exception: one request's bug must not end every connection of the thread, or the
// process (an exception leaving a std::thread terminates it). Returns how many it caught.
std::size_t runLoop(boost::asio::io_context& io, std::string_view thread);

}  // namespace portico
