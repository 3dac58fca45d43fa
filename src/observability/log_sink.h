#pragma once
// What the log writer's thread does with each sink: flush it now and then, reopen files after
// a rotation, and empty it at shutdown.
#include <chrono>
#include <cstdint>

#include "api/services.h"

namespace portico::observability {

class FlushableSink : public api::LogSink {
 public:
  // Sends or writes what is due; false when there was nothing to do.
  virtual bool flush() = 0;
  // At shutdown: everything buffered, waiting up to `wait` for it to leave.
  virtual void flushFinal(std::chrono::milliseconds /*wait*/) { flush(); }
  virtual bool reopen() { return true; }
  virtual std::uint64_t dropped() const = 0;
};

}  // namespace portico::observability
