#include "store/entity_store.h"

namespace portico::store {

void MemoryAudit::append(const AuditRecord& record) {
  records_.push_front(record);
  if (records_.size() > kKept) records_.pop_back();
}

std::vector<AuditRecord> MemoryAudit::newest(std::size_t limit) const {
  return std::vector<AuditRecord>(records_.begin(),
                                  records_.begin() + std::min(limit, records_.size()));
}

namespace {

class FileStore final : public EntityStore {
 public:
  std::string_view type() const override { return "file"; }
  bool writable() const override { return false; }
  Result<EntitySet> load() override { return EntitySet{}; }  // the file's sections are the truth
  Result<std::uint64_t> commit(std::uint64_t, const std::vector<Change>&,
                               const std::string&) override {
    return makeError("store: file is read-only at run time");
  }
  Result<bool> appendAudit(const AuditRecord& record) override {
    audit_.append(record);
    return true;
  }
  Result<std::vector<AuditRecord>> audit(std::size_t limit) override {
    return audit_.newest(limit);
  }

 private:
  MemoryAudit audit_;
};

}  // namespace

std::unique_ptr<EntityStore> makeFileStore() {
  return std::make_unique<FileStore>();
}

}  // namespace portico::store
