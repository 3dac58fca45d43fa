#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "store/entity_set.h"
#include "store/etcd_client.h"
#include "store/etcd_store.h"
#include "store/sqlite_store.h"
#include "support/loopback.h"

namespace portico::store {
namespace {

nlohmann::json route(const std::string& name, const std::string& path) {
  return {{"name", name}, {"match", {{"path", path}}}, {"upstream", "u"}};
}

struct TempDb {
  std::string path =
      std::filesystem::temp_directory_path() /
      ("portico-store-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".db");
  ~TempDb() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  }
  static inline int counter = 0;
};

TEST(EntitySet, PlanComparesValuesNotKeyOrderAndPrunesOnlyLabelled) {
  auto from = EntitySet::fromDocument(nlohmann::json::parse(R"({
    "routes": [{"name": "a", "upstream": "u", "match": {"path": "/a"}},
               {"name": "b", "upstream": "u", "labels": {"team": "x"}},
               {"name": "c", "upstream": "u"}]})"));
  auto to = EntitySet::fromDocument(nlohmann::json::parse(R"({
    "routes": [{"match": {"path": "/a"}, "upstream": "u", "name": "a", "revision": 7},
               {"name": "d", "upstream": "u"}]})"));
  const Plan keep = plan(from, to, false, {});
  EXPECT_EQ(keep.create.size(), 1u);
  EXPECT_TRUE(keep.update.empty());  // same value, other key order, metadata ignored
  EXPECT_TRUE(keep.remove.empty());
  const Plan all = plan(from, to, true, {});
  EXPECT_EQ(all.remove.size(), 2u);
  const Plan team = plan(from, to, true, {{"team", "x"}});
  ASSERT_EQ(team.remove.size(), 1u);
  EXPECT_EQ(team.remove[0].name, "b");
}

TEST(EntitySet, ApplyKeepsPositionAndCreationTime) {
  EntitySet set;
  set = applyChanges(set,
                     {{Kind::Routes, "a", route("a", "/a")}, {Kind::Routes, "b", route("b", "/b")}},
                     1, "2026-01-01T00:00:00Z");
  set = applyChanges(set, {{Kind::Routes, "a", route("a", "/a2")}}, 2, "2026-01-02T00:00:00Z");
  ASSERT_EQ(set.list(Kind::Routes).size(), 2u);
  const Entity& a = set.list(Kind::Routes)[0];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.revision, 2u);
  EXPECT_EQ(a.created_at, "2026-01-01T00:00:00Z");
  EXPECT_EQ(a.updated_at, "2026-01-02T00:00:00Z");
  EXPECT_EQ(set.revision, 2u);
  EXPECT_EQ(set.document()["routes"][0]["match"]["path"], "/a2");
}

TEST(EntitySet, RevertPutsBackWhatAnApplyChanged) {
  EntitySet set;
  set.apply({{Kind::Routes, "a", route("a", "/a")},
             {Kind::Routes, "b", route("b", "/b")},
             {Kind::Routes, "c", route("c", "/c")}},
            1, "t1");
  const nlohmann::json before = set.document();
  // Replace a, delete b (from the middle), create d; then a refused write is reverted.
  auto undo = set.apply({{Kind::Routes, "a", route("a", "/a2")},
                         {Kind::Routes, "b", std::nullopt},
                         {Kind::Routes, "d", route("d", "/d")}},
                        2, "t2");
  EXPECT_EQ(set.revision, 2u);
  EXPECT_EQ(set.list(Kind::Routes).size(), 3u);
  EXPECT_EQ(set.find(Kind::Routes, "b"), nullptr);
  set.revert(std::move(undo));
  EXPECT_EQ(set.revision, 1u);
  EXPECT_EQ(set.document(), before);  // same bodies, same order
  ASSERT_NE(set.find(Kind::Routes, "b"), nullptr);
  EXPECT_EQ(set.find(Kind::Routes, "b")->created_at, "t1");
  EXPECT_EQ(set.find(Kind::Routes, "c"), &set.list(Kind::Routes)[2]);  // the name index too
  EXPECT_EQ(set.find(Kind::Routes, "d"), nullptr);
  EXPECT_EQ(set.find(Kind::Routes, "a")->revision, 1u);
}

TEST(EntitySet, SectionsPointAtTheBodiesInOrder) {
  EntitySet set;
  set.apply({{Kind::Routes, "a", route("a", "/a")}, {Kind::Routes, "b", route("b", "/b")}}, 1, "t");
  const auto sections = set.sections();
  ASSERT_EQ(sections.size(), kKinds.size());  // every kind, empty ones too
  const auto routes = std::find_if(sections.begin(), sections.end(),
                                   [](const auto& s) { return s.first == "routes"; });
  ASSERT_NE(routes, sections.end());
  ASSERT_EQ(routes->second.size(), 2u);
  EXPECT_EQ(routes->second[1], &set.list(Kind::Routes)[1].body);
}

TEST(SqliteStore, CommitsAtomicallyAndRefusesAStaleBase) {
  TempDb db;
  {
    auto store = openSqliteStore(db.path);
    ASSERT_TRUE(store.ok()) << store.error().message;
    auto r1 = (*store)->commit(0,
                               {{Kind::Upstreams, "u", nlohmann::json{{"name", "u"}}},
                                {Kind::Routes, "a", route("a", "/a")}},
                               "t1");
    ASSERT_TRUE(r1.ok()) << r1.error().message;
    EXPECT_EQ(*r1, 1u);
    auto stale = (*store)->commit(0, {{Kind::Routes, "b", route("b", "/b")}}, "t2");
    ASSERT_FALSE(stale.ok());
    EXPECT_EQ(stale.error().message, kConflict);
    ASSERT_TRUE((*store)->commit(1, {{Kind::Routes, "a", std::nullopt}}, "t3").ok());
    ASSERT_TRUE(
        (*store)->appendAudit({"t3", "ci", "DELETE", "/admin/v1/routes/a", 200, 2, {}}).ok());
  }
  auto reopened = openSqliteStore(db.path);  // survives a restart
  ASSERT_TRUE(reopened.ok());
  auto set = (*reopened)->load();
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->revision, 2u);
  EXPECT_EQ(set->list(Kind::Routes).size(), 0u);
  ASSERT_EQ(set->list(Kind::Upstreams).size(), 1u);
  EXPECT_EQ(set->list(Kind::Upstreams)[0].created_at, "t1");
  auto audit = (*reopened)->audit(10);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].actor, "ci");
}

TEST(SqliteStore, KeepsUsageMergedPerApplicationApiAndDayAcrossRestarts) {
  TempDb db;
  // A merge that adds "n" (the store does not know the value's shape).
  const UsageMerge add = [](nlohmann::json& into, const nlohmann::json& more) {
    into["n"] = into.value("n", 0) + more.value("n", 0);
  };
  {
    auto store = openSqliteStore(db.path);
    ASSERT_TRUE(store.ok());
    EXPECT_TRUE((*store)->keepsUsage());
    ASSERT_TRUE((*store)
                    ->addUsage({{"app1", "items", 100, {{"n", 2}}},
                                {"app1", "items", 101, {{"n", 1}}},
                                {"app1", "items", 60, {{"n", 9}}},
                                {"app2", "items", 101, {{"n", 7}}}},
                               add, 50)
                    .ok());
    // The next minute: added to what is there; days before 70 dropped.
    ASSERT_TRUE((*store)->addUsage({{"app1", "items", 101, {{"n", 3}}}}, add, 70).ok());
  }
  auto store = openSqliteStore(db.path);
  ASSERT_TRUE(store.ok());
  auto rows = (*store)->usage("app1", 0, add);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);  // day 60 was pruned, app2 is not app1's
  std::map<std::int64_t, int> by_day;
  for (const auto& r : *rows) by_day[r.day] = r.value["n"];
  EXPECT_EQ(by_day, (std::map<std::int64_t, int>{{100, 2}, {101, 4}}));
  EXPECT_EQ((*store)->usage("app1", 101, add)->size(), 1u);
}

TEST(SqliteStore, RefusesAFileThatIsNotADatabase) {
  TempDb db;
  std::ofstream(db.path) << "this is not a database, just text long enough to be read as one";
  auto store = openSqliteStore(db.path);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find(db.path), std::string::npos);
  EXPECT_NE(store.error().message.find("not a database"), std::string::npos)
      << store.error().message;
}

TEST(EtcdStore, KeysNameTheKindAndTheObject) {
  EXPECT_EQ(etcdEntityKey("/portico", Kind::Routes, "a/b"), "/portico/routes/a/b");
  Kind kind;
  std::string name;
  ASSERT_TRUE(parseEtcdEntityKey("/portico", "/portico/upstreams/u1", kind, name));
  EXPECT_EQ(kind, Kind::Upstreams);
  EXPECT_EQ(name, "u1");
  for (const char* key : {"/portico/nodes/n1", "/portico/routes/", "/portico/routes",
                          "/porticox/routes/a", "/other/routes/a", "/portico"})
    EXPECT_FALSE(parseEtcdEntityKey("/portico", key, kind, name)) << key;
  EXPECT_EQ(etcdPrefixEnd("/portico/"), "/portico0");  // '/' + 1
  EXPECT_EQ(etcdKey("/a"), "L2E=");
}

// An etcd gateway that answers each path with fixed text (a 200 with that JSON; for the watch,
// a chunked stream of those lines, then its end), and counts the calls by path.
class FakeEtcd {
 public:
  explicit FakeEtcd(std::map<std::string, std::string> answers) : answers_(std::move(answers)) {
    listener_ = testing::listenOnLoopback(port_, 16);
    EXPECT_GE(listener_, 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeEtcd() {
    stopping_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int calls(const std::string& path) {
    std::lock_guard lock(mutex_);
    return calls_[path];
  }

 private:
  void serve() {
    while (!stopping_) {
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      timeval tv{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string in;
      char buf[4096];
      for (;;) {  // requests on this connection, one at a time
        std::size_t end;
        while ((end = in.find("\r\n\r\n")) == std::string::npos) {
          const ssize_t n = ::read(fd, buf, sizeof buf);
          if (n <= 0) break;
          in.append(buf, static_cast<std::size_t>(n));
        }
        if (end == std::string::npos) break;
        const std::size_t cl = in.find("Content-Length: ");
        const std::size_t length = cl < end ? std::stoul(in.substr(cl + 16)) : 0;
        while (in.size() < end + 4 + length) {
          const ssize_t n = ::read(fd, buf, sizeof buf);
          if (n <= 0) break;
          in.append(buf, static_cast<std::size_t>(n));
        }
        const std::string path = in.substr(5, in.find(' ', 5) - 5);  // after "POST "
        in.erase(0, std::min(in.size(), end + 4 + length));
        {
          std::lock_guard lock(mutex_);
          ++calls_[path];
        }
        const auto it = answers_.find(path);
        const std::string body = it == answers_.end() ? "{}" : it->second;
        std::string out;
        if (path == "/v3/watch") {
          out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
          char size[32];
          std::snprintf(size, sizeof size, "%zx\r\n", body.size());
          out += size + body + "\r\n0\r\n\r\n";
        } else {
          out = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                body;
        }
        if (::write(fd, out.data(), out.size()) != static_cast<ssize_t>(out.size())) break;
        if (path == "/v3/watch") break;
      }
      ::close(fd);
    }
  }

  std::map<std::string, std::string> answers_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::map<std::string, int> calls_;
  std::thread thread_;
};

// JSON of another shape than etcd's (a list for a map, a string for a boolean, a number for the
// lease id) is an error or nothing, never an exception: the watch and the heartbeat run on
// threads of their own, where one ended the process.
TEST(EtcdStore, AnswersOfAnotherShapeAreNotExceptions) {
  FakeEtcd etcd({{"/v3/kv/range", "[1, 2]"},
                 {"/v3/kv/txn", R"({"succeeded": "yes", "header": []})"},
                 {"/v3/watch",
                  "[1]\n{\"result\": 1}\n"
                  R"({"result": {"canceled": "no", "events": {"a": 1}}})"
                  "\n"},
                 {"/v3/lease/grant", R"({"ID": 5})"}});
  EtcdSettings settings;
  settings.endpoints = {etcd.endpoint()};
  settings.timeout = std::chrono::milliseconds(1000);
  auto store = makeEtcdStore(settings);
  const auto set = store->load();
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(set->revision, 0u);
  const auto committed = store->commit(0, {{Kind::Routes, "a", route("a", "/a")}}, "t");
  ASSERT_FALSE(committed);
  EXPECT_NE(committed.error().message.find("conflict"), std::string::npos)
      << committed.error().message;
  EXPECT_TRUE(store->audit(10));
  EXPECT_TRUE(store->nodes());
  std::atomic<int> updates{0};
  store->watch(0, [&](StoreUpdate) { ++updates; });
  store->announce({"n1", "127.0.0.1:1", 0, "", 0});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while ((etcd.calls("/v3/watch") < 2 || etcd.calls("/v3/lease/grant") < 1) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_GE(etcd.calls("/v3/watch"), 2);  // the stream ended and was opened again
  EXPECT_GE(etcd.calls("/v3/lease/grant"), 1);
  store.reset();  // stops both threads
}

TEST(EtcdStore, AnUnreachableEtcdIsAnErrorNotAHang) {
  EtcdSettings settings;
  settings.endpoints = {"http://127.0.0.1:1"};
  settings.timeout = std::chrono::milliseconds(500);
  auto store = makeEtcdStore(settings);
  const auto started = std::chrono::steady_clock::now();
  const auto set = store->load();
  ASSERT_FALSE(set);
  EXPECT_NE(set.error().message.find("127.0.0.1:1"), std::string::npos) << set.error().message;
  EXPECT_FALSE(store->commit(0, {{Kind::Routes, "a", route("a", "/a")}}, "t"));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));
}

}  // namespace
}  // namespace portico::store
