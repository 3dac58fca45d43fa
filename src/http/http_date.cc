#include "http/http_date.h"

#include <array>
#include <charconv>
#include <cstdio>
#include <ctime>

namespace portico::http {
namespace {

constexpr std::array<std::string_view, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<std::string_view, 7> kDays{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

// A small cursor over the text: each read consumes what it matched.
struct Reader {
  std::string_view s;
  bool ok = true;

  void skip(char c) {
    if (ok && !s.empty() && s.front() == c)
      s.remove_prefix(1);
    else
      ok = false;
  }
  void skipSpaces() {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  }
  int number(std::size_t min_digits, std::size_t max_digits) {
    if (!ok) return 0;
    std::size_t n = 0;
    while (n < s.size() && n < max_digits && s[n] >= '0' && s[n] <= '9') ++n;
    int v = 0;
    if (n < min_digits || std::from_chars(s.data(), s.data() + n, v).ec != std::errc()) {
      ok = false;
      return 0;
    }
    s.remove_prefix(n);
    return v;
  }
  int month() {
    if (ok && s.size() >= 3) {
      for (std::size_t i = 0; i < kMonths.size(); ++i) {
        if (s.substr(0, 3) == kMonths[i]) {
          s.remove_prefix(3);
          return static_cast<int>(i);
        }
      }
    }
    ok = false;
    return 0;
  }
  void word(std::string_view w) {
    if (ok && s.substr(0, w.size()) == w)
      s.remove_prefix(w.size());
    else
      ok = false;
  }
  // "HH:MM:SS"
  void clock(std::tm& tm) {
    tm.tm_hour = number(2, 2);
    skip(':');
    tm.tm_min = number(2, 2);
    skip(':');
    tm.tm_sec = number(2, 2);
  }
};

}  // namespace

std::optional<SystemTime> parseHttpDate(std::string_view text) {
  std::tm tm{};
  const std::size_t comma = text.find(',');
  Reader r{text};
  if (comma == 3) {  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    r.s.remove_prefix(4);
    r.skip(' ');
    tm.tm_mday = r.number(2, 2);
    r.skip(' ');
    tm.tm_mon = r.month();
    r.skip(' ');
    tm.tm_year = r.number(4, 4) - 1900;
    r.skip(' ');
    r.clock(tm);
    r.word(" GMT");
  } else if (comma != std::string_view::npos) {  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
    r.s.remove_prefix(comma + 1);
    r.skip(' ');
    tm.tm_mday = r.number(2, 2);
    r.skip('-');
    tm.tm_mon = r.month();
    r.skip('-');
    const int yy = r.number(2, 2);
    tm.tm_year = yy < 70 ? yy + 100 : yy;  // two-digit years: 1970-2069
    r.skip(' ');
    r.clock(tm);
    r.word(" GMT");
  } else {  // asctime: "Sun Nov  6 08:49:37 1994"
    if (r.s.size() < 4) return std::nullopt;
    r.s.remove_prefix(4);
    tm.tm_mon = r.month();
    r.skipSpaces();
    tm.tm_mday = r.number(1, 2);
    r.skip(' ');
    r.clock(tm);
    r.skip(' ');
    tm.tm_year = r.number(4, 4) - 1900;
  }
  // Years a system_clock time point holds (nanoseconds: 1678-2262), with margin.
  if (!r.ok || !r.s.empty() || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_year < 0 || tm.tm_year > 2200 - 1900)
    return std::nullopt;
  const std::time_t t = timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(t);
}

std::string formatHttpDate(SystemTime t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char out[32];
  std::snprintf(out, sizeof out, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                kDays[static_cast<std::size_t>(tm.tm_wday) % 7].data(), tm.tm_mday,
                kMonths[static_cast<std::size_t>(tm.tm_mon) % 12].data(), tm.tm_year + 1900,
                tm.tm_hour, tm.tm_min, tm.tm_sec);
  return out;
}

}  // namespace portico::http
