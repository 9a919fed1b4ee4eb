// ISO 8601 timestamps, dates and durations. GCC 12 has no std::chrono::parse, hence the small parser.
#include "policy/time_util.hpp"

#include <cctype>
#include <cstdio>
#include <string>

namespace faceguard {
namespace {

using namespace std::chrono;

bool digits(std::string_view s, std::size_t at, std::size_t n, int& out) {
  if (at + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

}  // namespace

Result<Timestamp> parse_timestamp(std::string_view s) {
  auto bad = [&] { return make_error(ErrorCode::kInvalidArgument, "not an ISO 8601 time: '" + std::string(s) + "'"); };
  int y, mo, d;
  if (s.size() < 10 || !digits(s, 0, 4, y) || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d))
    return bad();
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || y < 1900) return bad();
  long long secs = 0;
  int offset = 0;
  std::size_t i = 10;
  if (i < s.size()) {
    if (s[i] != 'T' && s[i] != 't' && s[i] != ' ') return bad();
    int hh, mm, ss = 0;
    if (!digits(s, i + 1, 2, hh) || i + 3 >= s.size() || s[i + 3] != ':' || !digits(s, i + 4, 2, mm)) return bad();
    i += 6;
    if (i < s.size() && s[i] == ':') {
      if (!digits(s, i + 1, 2, ss)) return bad();
      i += 3;
      if (i < s.size() && (s[i] == '.' || s[i] == ',')) {  // fractions are accepted and truncated
        ++i;
        std::size_t start = i;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
        if (i == start) return bad();
      }
    }
    if (hh > 23 || mm > 59 || ss > 60) return bad();
    secs = hh * 3600LL + mm * 60LL + std::min(ss, 59);
    if (i < s.size()) {
      if (s[i] == 'Z' || s[i] == 'z') {
        ++i;
      } else if (s[i] == '+' || s[i] == '-') {
        int oh, om = 0;
        const int sign = s[i] == '-' ? -1 : 1;
        if (!digits(s, i + 1, 2, oh)) return bad();
        i += 3;
        if (i < s.size() && s[i] == ':') ++i;
        if (i < s.size()) {
          if (!digits(s, i, 2, om)) return bad();
          i += 2;
        }
        if (oh > 18 || om > 59) return bad();
        offset = sign * (oh * 60 + om);
      } else {
        return bad();
      }
    }
    if (i != s.size()) return bad();
  }
  Timestamp t;
  t.offset_minutes = offset;
  t.utc = sys_seconds{sys_days{ymd}.time_since_epoch()} + seconds{secs} - minutes{offset};
  return t;
}

std::string format_utc(TimePoint t) {
  const auto dp = floor<days>(t);
  const year_month_day ymd{dp};
  const hh_mm_ss hms{t - dp};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

std::string format_timestamp(const Timestamp& t) {
  if (t.offset_minutes == 0) return format_utc(t.utc);
  std::string local = format_utc(t.utc + minutes{t.offset_minutes});
  local.pop_back();  // 'Z'
  const int off = t.offset_minutes < 0 ? -t.offset_minutes : t.offset_minutes;
  char buf[8];
  std::snprintf(buf, sizeof buf, "%c%02d:%02d", t.offset_minutes < 0 ? '-' : '+', off / 60, off % 60);
  return local + buf;
}

namespace policy {

std::optional<CalendarSpan> parse_duration(std::string_view s) {
  if (s.size() < 3 || (s[0] != 'P' && s[0] != 'p')) return std::nullopt;
  CalendarSpan span;
  bool in_time = false, any = false;
  std::size_t i = 1;
  while (i < s.size()) {
    if (s[i] == 'T' || s[i] == 't') {
      if (in_time) return std::nullopt;
      in_time = true;
      ++i;
      continue;
    }
    long long v = 0;
    std::size_t start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      v = v * 10 + (s[i] - '0');
      if (v > 1000000) return std::nullopt;  // no term runs for a million units
      ++i;
    }
    if (i == start || i >= s.size()) return std::nullopt;
    const char unit = static_cast<char>(std::toupper(static_cast<unsigned char>(s[i++])));
    any = true;
    if (!in_time) {
      switch (unit) {
        case 'Y': span.years += static_cast<int>(v); break;
        case 'M': span.months += static_cast<int>(v); break;
        case 'W': span.days += 7 * v; break;
        case 'D': span.days += v; break;
        default: return std::nullopt;
      }
    } else {
      switch (unit) {
        case 'H': span.seconds += 3600 * v; break;
        case 'M': span.seconds += 60 * v; break;
        case 'S': span.seconds += v; break;
        default: return std::nullopt;
      }
    }
  }
  if (!any) return std::nullopt;
  return span;
}

TimePoint add_span(TimePoint t, const CalendarSpan& span) {
  using namespace std::chrono;
  const auto dp = floor<days>(t);
  const auto tod = t - dp;
  year_month_day ymd{dp};
  const int total_months = static_cast<int>(static_cast<unsigned>(ymd.month())) - 1 + span.months + 12 * span.years;
  const int y = static_cast<int>(ymd.year()) + total_months / 12;
  const unsigned m = static_cast<unsigned>(total_months % 12) + 1;
  year_month_day_last last{year{y} / month{m} / std::chrono::last};
  const unsigned d = std::min(static_cast<unsigned>(ymd.day()), static_cast<unsigned>(last.day()));
  const sys_days shifted{year{y} / month{m} / day{d}};
  return TimePoint{shifted.time_since_epoch()} + tod + days{span.days} + seconds{span.seconds};
}

std::chrono::sys_days local_date(const Timestamp& t) {
  return std::chrono::floor<std::chrono::days>(t.utc + std::chrono::minutes{t.offset_minutes});
}

std::optional<std::chrono::sys_days> parse_date(std::string_view text) {
  if (text.size() != 10) return std::nullopt;
  auto t = parse_timestamp(text);
  if (!t) return std::nullopt;
  return std::chrono::floor<std::chrono::days>(t->utc);
}

TimePoint now_seconds() { return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()); }

}  // namespace policy
}  // namespace faceguard
