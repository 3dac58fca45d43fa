#include "admin/admin_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/loopback.h"

namespace portico::admin {
namespace {

// An admin server on 127.0.0.1 (a port of the kernel's choice), its loop on a thread of its
// own; `ask` is a blocking client that sends one request and reads the answer to the close.
class Served {
 public:
  template <typename Handler>
  explicit Served(Handler handler) : server_(io_, std::move(handler)) {
    EXPECT_TRUE(server_.listen("127.0.0.1:0").ok());
    loop_ = std::thread([this] { io_.run(); });
  }
  ~Served() {
    boost::asio::post(io_, [this] { server_.stop(); });
    work_.reset();
    io_.stop();
    loop_.join();
  }

  std::string ask(const std::string& request) const {
    const int fd = testing::connectTo(server_.port());
    EXPECT_GE(fd, 0);
    timeval limit{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    EXPECT_EQ(::write(fd, request.data(), request.size()), ssize_t(request.size()));
    std::string answer;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) answer.append(buf, std::size_t(n));
    ::close(fd);
    return answer;
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  AdminServer server_;
  std::thread loop_;
};

std::string statusLine(const std::string& answer) {
  return answer.substr(0, answer.find("\r\n"));
}

nlohmann::json bodyOf(const std::string& answer) {
  const auto at = answer.find("\r\n\r\n");
  if (at == std::string::npos) return nullptr;
  return nlohmann::json::parse(answer.substr(at + 4), nullptr, false);
}

constexpr const char* kGet = "GET /boom HTTP/1.1\r\nHost: admin\r\nX-Request-Id: req-42\r\n\r\n";

TEST(AdminServer, AnswersWhatTheHandlerReturns) {
  Served s(AdminHandler([](const AdminRequest& r) {
    return AdminResponse{200, "application/json", R"({"path":")" + r.path + R"("})", {}};
  }));
  const std::string answer = s.ask(kGet);
  EXPECT_EQ(statusLine(answer), "HTTP/1.1 200 OK");
  EXPECT_NE(answer.find("X-Request-Id: req-42\r\n"), std::string::npos);
  EXPECT_EQ(bodyOf(answer)["path"], "/boom");
}

// A handler that throws is a bug; the client still gets a JSON 500 naming its request id, and
// the exception's text stays in the log.
TEST(AdminServer, AHandlerThatThrowsGetsAJson500) {
  Served s(AdminHandler(
      [](const AdminRequest&) -> AdminResponse { throw std::runtime_error("secret detail"); }));
  const std::string answer = s.ask(kGet);
  EXPECT_EQ(statusLine(answer), "HTTP/1.1 500 Internal Server Error");
  const auto body = bodyOf(answer);
  EXPECT_EQ(body["status"], 500);
  EXPECT_EQ(body["request_id"], "req-42");
  EXPECT_EQ(answer.find("secret detail"), std::string::npos);
  // The server goes on serving.
  EXPECT_EQ(statusLine(s.ask(kGet)), "HTTP/1.1 500 Internal Server Error");
}

TEST(AdminServer, AHandlerThatThrowsSomethingElseGetsA500Too) {
  Served s(AdminHandler([](const AdminRequest&) -> AdminResponse { throw 7; }));
  EXPECT_EQ(statusLine(s.ask(kGet)), "HTTP/1.1 500 Internal Server Error");
}

TEST(AdminServer, AnAsyncHandlerThatThrowsBeforeReplyingGetsA500) {
  Served s(AsyncAdminHandler([](const AdminRequest&, std::function<void(AdminResponse)>) {
    throw std::logic_error("no reply");
  }));
  const std::string answer = s.ask(kGet);
  EXPECT_EQ(statusLine(answer), "HTTP/1.1 500 Internal Server Error");
  EXPECT_EQ(bodyOf(answer)["request_id"], "req-42");
}

// The first reply counts: throwing after it, or replying again, changes nothing.
TEST(AdminServer, AnAsyncHandlerThatRepliesThenThrowsKeepsItsReply) {
  Served s(AsyncAdminHandler([](const AdminRequest&, std::function<void(AdminResponse)> reply) {
    reply({201, "application/json", R"({"made":true})", {}});
    reply({202, "application/json", R"({"made":false})", {}});
    throw std::runtime_error("after the reply");
  }));
  const std::string answer = s.ask(kGet);
  EXPECT_EQ(statusLine(answer), "HTTP/1.1 201 Created");
  EXPECT_EQ(bodyOf(answer)["made"], true);
}

// The reply may come from another thread, later.
TEST(AdminServer, AnAsyncHandlerMayReplyFromAnotherThread) {
  std::vector<std::thread> helpers;
  {
    Served s(AsyncAdminHandler(
        [&helpers](const AdminRequest&, std::function<void(AdminResponse)> reply) {
          helpers.emplace_back([reply] { reply({200, "text/plain", "later", {}}); });
        }));
    const std::string answer = s.ask(kGet);
    EXPECT_EQ(statusLine(answer), "HTTP/1.1 200 OK");
    EXPECT_EQ(answer.substr(answer.size() - 5), "later");
    for (auto& t : helpers) t.join();
  }
}

}  // namespace
}  // namespace portico::admin
