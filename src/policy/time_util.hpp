// Calendar arithmetic and ISO 8601 durations for the policy area (private).
#pragma once

#include <optional>
#include <string_view>

#include "faceguard/policy.hpp"

namespace faceguard::policy {

// An ISO 8601 duration: PnYnMnDTnHnMnS (weeks as PnW). Years and months are calendar units.
struct CalendarSpan {
  int years = 0;
  int months = 0;
  long long days = 0;
  long long seconds = 0;
};
std::optional<CalendarSpan> parse_duration(std::string_view text);

// t + span, adding years/months on the civil (UTC) date; a day past the month's end clamps to its last
// day (2024-02-29 + P1Y = 2025-02-28): the earlier reading, since deadlines must not run late.
TimePoint add_span(TimePoint t, const CalendarSpan& span);

// The local calendar date of a stated time, as days since the epoch.
std::chrono::sys_days local_date(const Timestamp& t);

// "YYYY-MM-DD" only (effective windows).
std::optional<std::chrono::sys_days> parse_date(std::string_view text);

TimePoint now_seconds();

}  // namespace faceguard::policy
