#include "store/sqlite_store.h"

#include <sqlite3.h>

namespace portico::store {
namespace {

// RAII for the connection and statements.
struct DbClose {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalize {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Db = std::unique_ptr<sqlite3, DbClose>;
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0), ('schema', 1);
CREATE TABLE IF NOT EXISTS entities (
  kind TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, revision INTEGER NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, position INTEGER NOT NULL,
  PRIMARY KEY (kind, name));
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, actor TEXT NOT NULL,
  method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL, revision INTEGER NOT NULL,
  diff TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS usage (
  application TEXT NOT NULL, api TEXT NOT NULL, day INTEGER NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (application, day, api));
)sql";

std::string text(sqlite3_stmt* s, int column) {
  const auto* p = sqlite3_column_text(s, column);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<std::size_t>(sqlite3_column_bytes(s, column)))
           : std::string();
}

// (Not `bind`: with a std::string argument, ADL would pick std::bind.)
void bindText(sqlite3_stmt* s, int index, std::string_view value) {
  sqlite3_bind_text(s, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
}

class SqliteStore final : public EntityStore {
 public:
  SqliteStore(Db db, std::string path) : db_(std::move(db)), path_(std::move(path)) {}

  std::string_view type() const override { return "sqlite"; }
  bool writable() const override { return true; }

  Result<bool> init() {
    if (auto ok = exec("PRAGMA journal_mode=WAL"); !ok) return ok;
    if (auto ok = exec("PRAGMA synchronous=NORMAL"); !ok) return ok;
    // A damaged file is refused here, before anything is served from it.
    auto check = prepare("PRAGMA quick_check");
    if (!check) return check.error();
    if (sqlite3_step(check->get()) != SQLITE_ROW) return failure("checking the database");
    if (const auto verdict = text(check->get(), 0); verdict != "ok")
      return makeError(path_ + ": the database is damaged: " + verdict);
    return exec(kSchema);
  }

  Result<EntitySet> load() override {
    EntitySet set;
    auto rev = prepare("SELECT value FROM meta WHERE key = 'revision'");
    if (!rev) return rev.error();
    if (sqlite3_step(rev->get()) == SQLITE_ROW) set.revision = sqlite3_column_int64(rev->get(), 0);
    auto rows = prepare(
        "SELECT kind, name, body, revision, created_at, updated_at FROM entities "
        "ORDER BY position");
    if (!rows) return rows.error();
    int rc;
    while ((rc = sqlite3_step(rows->get())) == SQLITE_ROW) {
      const auto kind = kindFromName(text(rows->get(), 0));
      if (!kind) continue;  // a kind a newer version wrote
      Entity e;
      e.name = text(rows->get(), 1);
      e.body = nlohmann::json::parse(text(rows->get(), 2), nullptr, false);
      if (e.body.is_discarded())
        return makeError(path_ + ": the stored " + std::string(kindName(*kind)) + " \"" + e.name +
                         "\" is not JSON");
      e.revision = sqlite3_column_int64(rows->get(), 3);
      e.created_at = text(rows->get(), 4);
      e.updated_at = text(rows->get(), 5);
      set.put(*kind, std::move(e));
    }
    if (rc != SQLITE_DONE) return failure("reading entities");
    return set;
  }

  Result<std::uint64_t> commit(std::uint64_t base, const std::vector<Change>& changes,
                               const std::string& now) override {
    if (auto ok = exec("BEGIN IMMEDIATE"); !ok) return ok.error();
    auto result = commitInTransaction(base, changes, now);
    if (!result) {
      (void)exec("ROLLBACK");
      return result;
    }
    if (auto ok = exec("COMMIT"); !ok) {
      (void)exec("ROLLBACK");
      return ok.error();
    }
    return result;
  }

  Result<bool> appendAudit(const AuditRecord& r) override {
    auto s = prepare(
        "INSERT INTO audit (time, actor, method, path, status, revision, diff) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)");
    if (!s) return s.error();
    bindText(s->get(), 1, r.time);
    bindText(s->get(), 2, r.actor);
    bindText(s->get(), 3, r.method);
    bindText(s->get(), 4, r.path);
    sqlite3_bind_int(s->get(), 5, r.status);
    sqlite3_bind_int64(s->get(), 6, static_cast<sqlite3_int64>(r.revision));
    bindText(s->get(), 7, r.diff.is_null() ? std::string("null") : r.diff.dump());
    if (sqlite3_step(s->get()) != SQLITE_DONE) return failure("writing the audit log");
    return true;
  }

  bool keepsUsage() const override { return true; }

  Result<bool> addUsage(const std::vector<UsageRecord>& records, const UsageMerge& merge,
                        std::int64_t oldest_day) override {
    if (auto ok = exec("BEGIN IMMEDIATE"); !ok) return ok.error();
    auto ok = addUsageInTransaction(records, merge, oldest_day);
    if (ok && !exec("COMMIT")) ok = failure("committing usage");
    if (!ok) (void)exec("ROLLBACK");
    return ok;
  }

  Result<std::vector<UsageRecord>> usage(const std::string& application, std::int64_t from_day,
                                         const UsageMerge&) override {
    auto s = prepare("SELECT api, day, value FROM usage WHERE application = ? AND day >= ?");
    if (!s) return s.error();
    bindText(s->get(), 1, application);
    sqlite3_bind_int64(s->get(), 2, from_day);
    std::vector<UsageRecord> out;
    while (sqlite3_step(s->get()) == SQLITE_ROW) {
      auto value = nlohmann::json::parse(text(s->get(), 2), nullptr, false);
      if (value.is_object())
        out.push_back(
            {application, text(s->get(), 0), sqlite3_column_int64(s->get(), 1), std::move(value)});
    }
    return out;
  }

  Result<std::vector<AuditRecord>> audit(std::size_t limit) override {
    auto s = prepare(
        "SELECT time, actor, method, path, status, revision, diff FROM audit "
        "ORDER BY id DESC LIMIT ?");
    if (!s) return s.error();
    sqlite3_bind_int64(s->get(), 1, static_cast<sqlite3_int64>(limit));
    std::vector<AuditRecord> out;
    while (sqlite3_step(s->get()) == SQLITE_ROW) {
      AuditRecord r;
      r.time = text(s->get(), 0);
      r.actor = text(s->get(), 1);
      r.method = text(s->get(), 2);
      r.path = text(s->get(), 3);
      r.status = sqlite3_column_int(s->get(), 4);
      r.revision = static_cast<std::uint64_t>(sqlite3_column_int64(s->get(), 5));
      r.diff = nlohmann::json::parse(text(s->get(), 6), nullptr, false);
      out.push_back(std::move(r));
    }
    return out;
  }

 private:
  Result<bool> addUsageInTransaction(const std::vector<UsageRecord>& records,
                                     const UsageMerge& merge, std::int64_t oldest_day) {
    auto read = prepare("SELECT value FROM usage WHERE application = ? AND day = ? AND api = ?");
    auto write = prepare(
        "INSERT OR REPLACE INTO usage (application, day, api, value) "
        "VALUES (?, ?, ?, ?)");
    auto prune = prepare("DELETE FROM usage WHERE day < ?");
    if (!read || !write || !prune) return failure("preparing usage statements");
    for (const auto& r : records) {
      for (auto* s : {read->get(), write->get()}) {
        sqlite3_reset(s);
        bindText(s, 1, r.application);
        sqlite3_bind_int64(s, 2, r.day);
        bindText(s, 3, r.api);
      }
      nlohmann::json value = nlohmann::json::object();
      if (sqlite3_step(read->get()) == SQLITE_ROW)
        value = nlohmann::json::parse(text(read->get(), 0), nullptr, false);
      if (!value.is_object()) value = nlohmann::json::object();
      merge(value, r.value);
      bindText(write->get(), 4, value.dump());
      if (sqlite3_step(write->get()) != SQLITE_DONE) return failure("writing usage");
    }
    sqlite3_bind_int64(prune->get(), 1, oldest_day);
    if (sqlite3_step(prune->get()) != SQLITE_DONE) return failure("pruning usage");
    return true;
  }

  Result<std::uint64_t> commitInTransaction(std::uint64_t base, const std::vector<Change>& changes,
                                            const std::string& now) {
    auto rev = prepare("SELECT value FROM meta WHERE key = 'revision'");
    if (!rev) return rev.error();
    if (sqlite3_step(rev->get()) != SQLITE_ROW) return failure("reading the revision");
    if (static_cast<std::uint64_t>(sqlite3_column_int64(rev->get(), 0)) != base)
      return makeError(std::string(kConflict));
    const std::uint64_t next = base + 1;
    // New rows go last: positions counted from the largest once (a MAX per row would scan the
    // table each time: a 10,000-route apply took seconds).
    auto last = prepare("SELECT COALESCE(MAX(position), 0) FROM entities");
    if (!last) return last.error();
    if (sqlite3_step(last->get()) != SQLITE_ROW) return failure("reading positions");
    sqlite3_int64 position = sqlite3_column_int64(last->get(), 0);
    auto upsert = prepare(
        "INSERT INTO entities (kind, name, body, revision, created_at, updated_at, position) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6) "
        "ON CONFLICT (kind, name) DO UPDATE SET body = ?3, revision = ?4, updated_at = ?5");
    auto remove = prepare("DELETE FROM entities WHERE kind = ? AND name = ?");
    if (!upsert) return upsert.error();
    if (!remove) return remove.error();
    for (const auto& c : changes) {
      sqlite3_stmt* s = c.body ? upsert->get() : remove->get();
      sqlite3_reset(s);
      bindText(s, 1, kindName(c.kind));
      bindText(s, 2, c.name);
      if (c.body) {
        bindText(s, 3, c.body->dump());
        sqlite3_bind_int64(s, 4, static_cast<sqlite3_int64>(next));
        bindText(s, 5, now);
        sqlite3_bind_int64(s, 6, ++position);
      }
      if (sqlite3_step(s) != SQLITE_DONE) return failure("writing entities");
    }
    auto set = prepare("UPDATE meta SET value = ? WHERE key = 'revision'");
    if (!set) return set.error();
    sqlite3_bind_int64(set->get(), 1, static_cast<sqlite3_int64>(next));
    if (sqlite3_step(set->get()) != SQLITE_DONE) return failure("writing the revision");
    return next;
  }

  Result<Stmt> prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_.get(), sql, -1, &s, nullptr) != SQLITE_OK)
      return failure("preparing a statement");
    return Stmt(s);
  }

  Result<bool> exec(const char* sql) {
    char* message = nullptr;
    if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, &message) == SQLITE_OK) return true;
    std::string why = message ? message : sqlite3_errmsg(db_.get());
    sqlite3_free(message);
    return makeError(path_ + ": " + why);
  }

  Error failure(const std::string& doing) const {
    return makeError(path_ + ": " + doing + ": " + sqlite3_errmsg(db_.get()));
  }

  Db db_;
  std::string path_;
};

}  // namespace

Result<std::unique_ptr<EntityStore>> openSqliteStore(const std::string& path) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK)
    return makeError(
        path + ": cannot open the database: " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  sqlite3_busy_timeout(db.get(), 5000);
  auto store = std::make_unique<SqliteStore>(std::move(db), path);
  if (auto ok = store->init(); !ok) return ok.error();
  return std::unique_ptr<EntityStore>(std::move(store));
}

}  // namespace portico::store
