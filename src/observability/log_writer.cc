#include "observability/log_writer.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/address.h"
#include "observability/http_log_sink.h"

namespace portico::observability {
namespace {

// "udp:HOST:PORT" (numeric address) or "unix:PATH" (a datagram socket such as /dev/log):
// a connected datagram socket, or -1.
int openSyslog(const std::string& where) {
  if (where.rfind("unix:", 0) == 0) {
    const std::string path = where.substr(5);
    sockaddr_un addr{};
    if (path.empty() || path.size() >= sizeof addr.sun_path) return -1;
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
  if (where.rfind("udp:", 0) != 0) return -1;
  auto hp = parseHostPort(where.substr(4));
  if (!hp) return -1;
  auto addrs = resolve(*hp);
  if (!addrs || addrs->empty()) return -1;
  const auto& a = addrs->front();
  int fd = ::socket(a.storage.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&a.storage), a.length) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int openForAppend(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

void writeAll(int fd, std::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // disk full, closed pipe: nothing better to do with a log line
    }
    off += static_cast<size_t>(n);
  }
}

}  // namespace

LogFile::LogFile(std::string destination, int fd, bool owns_fd, std::size_t ring_bytes)
    : destination_(std::move(destination)), fd_(fd), owns_fd_(owns_fd), rings_(ring_bytes) {}

LogFile::~LogFile() {
  flush();
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
}

void LogFile::write(std::string_view line) {
  if (!rings_.push(line)) dropped_.fetch_add(1, std::memory_order_relaxed);
}

bool LogFile::flush() {
  std::lock_guard lock(flush_mu_);
  if (!datagram_) {
    // Straight from the rings to the file: no copy.
    bool wrote = false;
    rings_.drainPieces([&](std::string_view piece) {
      writeAll(fd_, piece);
      wrote = true;
    });
    return wrote;
  }
  // Syslog: one datagram per line, each after the header.
  writing_.clear();
  rings_.drain(writing_);
  if (writing_.empty()) return false;
  std::string packet;
  for (std::size_t pos = 0; pos < writing_.size();) {
    std::size_t end = writing_.find('\n', pos);
    if (end == std::string::npos) end = writing_.size();
    packet.assign(datagram_header_);
    packet.append(writing_, pos, end - pos);
    // A lost datagram is a lost log line (counted by the receiver, not here): never block.
    (void)::send(fd_, packet.data(), packet.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    pos = end + 1;
  }
  writing_.clear();
  return true;
}

bool LogFile::reopen() {
  if (!owns_fd_ || datagram_) return true;  // sockets need no reopening after a rotation
  int fd = openForAppend(destination_);
  if (fd < 0) return false;
  flush();
  std::lock_guard lock(flush_mu_);
  ::close(fd_);
  fd_ = fd;
  return true;
}

LogWriter::LogWriter() : thread_([this] { run(); }) {}

LogWriter::~LogWriter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  flushAll();
}

std::shared_ptr<api::LogSink> LogWriter::logSink(const std::string& destination,
                                                 const api::LogSinkOptions& options) {
  const bool http = destination.rfind("http://", 0) == 0 || destination.rfind("https://", 0) == 0;
  // HTTP sinks differ by their batching too: a reload that changes it gets a new sink.
  std::string key = destination;
  if (http) {
    key += "\n" + std::to_string(options.batch_size) + "," +
           std::to_string(options.flush_interval.count()) + "," +
           std::to_string(options.timeout.count()) + "," + (options.json_lines ? "j" : "t") + "," +
           std::to_string(options.max_buffer_bytes);
    for (const auto& [name, value] : options.headers) key += "\n" + name + ":" + value;
  }
  std::lock_guard lock(mu_);
  if (auto it = files_.find(key); it != files_.end()) return it->second;
  constexpr std::size_t kRingBytes = 2 * 1024 * 1024;  // per writing thread
  std::shared_ptr<FlushableSink> file;
  if (http) {
    file = std::make_shared<HttpLogSink>(destination, options, http_);
  } else if (destination == "stdout") {
    file = std::make_shared<LogFile>(destination, STDOUT_FILENO, false, kRingBytes);
  } else if (destination == "stderr") {
    file = std::make_shared<LogFile>(destination, STDERR_FILENO, false, kRingBytes);
  } else if (destination.rfind("syslog:", 0) == 0) {
    int fd = openSyslog(destination.substr(7));
    if (fd < 0) return nullptr;
    auto syslog = std::make_shared<LogFile>(destination, fd, true, kRingBytes);
    syslog->useDatagrams("<134>1 - - portico - - - ");
    file = std::move(syslog);
  } else {
    int fd = openForAppend(destination);
    if (fd < 0) return nullptr;
    file = std::make_shared<LogFile>(destination, fd, true, kRingBytes);
  }
  files_[key] = file;
  return file;
}

void LogWriter::reopenAll() {
  std::lock_guard lock(mu_);
  for (auto& [_, f] : files_) f->reopen();
}

void LogWriter::flushAll() {
  std::lock_guard lock(mu_);
  for (auto& [_, f] : files_) f->flushFinal(std::chrono::seconds(2));
}

std::uint64_t LogWriter::droppedLines() const {
  std::lock_guard lock(mu_);
  std::uint64_t n = 0;
  for (const auto& [_, f] : files_) n += f->dropped();
  return n;
}

void LogWriter::run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::milliseconds(50));
    auto files = files_;
    lock.unlock();
    for (auto& [_, f] : files) f->flush();
    lock.lock();
  }
}

}  // namespace portico::observability
