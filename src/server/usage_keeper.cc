#include "server/usage_keeper.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace portico::server {

using filters::UsageBook;

std::string UsageKeeper::flush(std::chrono::system_clock::time_point now) {
  if (!store_.keepsUsage()) return "";
  for (auto& r : book_->take()) unsaved_.push_back(std::move(r));
  if (unsaved_.empty()) return "";
  unsaved_ = UsageBook::coalesce(std::move(unsaved_));  // one write per key (etcd: a txn's rule)
  const std::int64_t today = UsageBook::dayOf(now);
  auto ok = store_.addUsage(unsaved_, UsageBook::merge, today - UsageBook::kDays);
  if (ok) {
    unsaved_.clear();
    return "";
  }
  if (unsaved_.size() > kMaxUnsaved) {  // the store has been failing long: keep the newest days
    spdlog::warn("portal usage: the store refuses it; {} records dropped",
                 unsaved_.size() - kMaxUnsaved);
    std::nth_element(unsaved_.begin(), unsaved_.begin() + kMaxUnsaved, unsaved_.end(),
                     [](const auto& a, const auto& b) { return a.day > b.day; });
    unsaved_.resize(kMaxUnsaved);
  }
  return ok.error().message;
}

nlohmann::json UsageKeeper::report(const std::string& application, int days,
                                   std::chrono::system_clock::time_point now) const {
  const std::int64_t today = UsageBook::dayOf(now);
  const std::int64_t from = today - UsageBook::kDays;  // the quota seen last may be older
  std::vector<store::UsageRecord> records;
  if (store_.keepsUsage()) {
    auto stored = store_.usage(application, from, UsageBook::merge);
    if (stored)
      records = std::move(*stored);
    else
      spdlog::warn("portal usage: reading the store: {}", stored.error().message);
    for (const auto& r : unsaved_)
      if (r.application == application) records.push_back(r);
  }
  for (auto& r : book_->peek(application, from)) records.push_back(std::move(r));
  const auto unix_now =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  return UsageBook::report(records, today, days, unix_now);
}

}  // namespace portico::server
