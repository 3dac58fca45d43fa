#include "core/run_loop.h"

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>

#include <exception>

#include "core/exception_text.h"

namespace portico {

std::size_t runLoop(boost::asio::io_context& io, std::string_view thread) {
  std::size_t caught = 0;
  for (;;) {
    try {
      io.run();
      return caught;
    } catch (...) {
      ++caught;
      spdlog::error("{}: a handler ended by an exception (a bug; the loop goes on): {}", thread,
                    exceptionText(std::current_exception()));
    }
  }
}

}  // namespace portico
