#include "observability/log_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace portico::observability {
namespace {

int openForAppend(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

void writeAll(int fd, const std::string& data) {
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

LogFile::LogFile(std::string destination, int fd, bool owns_fd, std::size_t max_buffer)
    : destination_(std::move(destination)), fd_(fd), owns_fd_(owns_fd), max_buffer_(max_buffer) {}

LogFile::~LogFile() {
  flush();
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
}

void LogFile::write(std::string_view line) {
  std::lock_guard lock(mu_);
  if (buffer_.size() + line.size() + 1 > max_buffer_) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  buffer_.append(line);
  buffer_ += '\n';
}

bool LogFile::flush() {
  {
    std::lock_guard lock(mu_);
    if (buffer_.empty()) return false;
    writing_.swap(buffer_);
  }
  writeAll(fd_, writing_);
  writing_.clear();
  return true;
}

bool LogFile::reopen() {
  if (!owns_fd_) return true;
  int fd = openForAppend(destination_);
  if (fd < 0) return false;
  flush();
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

std::shared_ptr<api::LogSink> LogWriter::logSink(const std::string& destination) {
  std::lock_guard lock(mu_);
  if (auto it = files_.find(destination); it != files_.end()) return it->second;
  constexpr std::size_t kMaxBuffer = 8 * 1024 * 1024;
  std::shared_ptr<LogFile> file;
  if (destination == "stdout") {
    file = std::make_shared<LogFile>(destination, STDOUT_FILENO, false, kMaxBuffer);
  } else if (destination == "stderr") {
    file = std::make_shared<LogFile>(destination, STDERR_FILENO, false, kMaxBuffer);
  } else {
    int fd = openForAppend(destination);
    if (fd < 0) return nullptr;
    file = std::make_shared<LogFile>(destination, fd, true, kMaxBuffer);
  }
  files_[destination] = file;
  return file;
}

void LogWriter::reopenAll() {
  std::lock_guard lock(mu_);
  for (auto& [_, f] : files_) f->reopen();
}

void LogWriter::flushAll() {
  std::lock_guard lock(mu_);
  for (auto& [_, f] : files_) f->flush();
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
