#include "totals.h"

#include <string>

namespace mirage::repo {

metrics::DatabaseSample totals(db::Connection& c) {
  metrics::DatabaseSample d;
  db::Result r = c.exec(
      "SELECT count(*) FILTER (WHERE ended_at IS NULL), count(*), coalesce(sum(seconds_billed), 0), "
      "  (SELECT coalesce(sum(credited_seconds), 0) FROM payments) "
      "FROM streams");
  d.streams_live = std::stoll(r.value(0, 0));
  d.streams_started = std::stoll(r.value(0, 1));
  d.seconds_billed = std::stoll(r.value(0, 2));
  d.seconds_bought = std::stoll(r.value(0, 3));
  db::Result ended = c.exec(
      "SELECT coalesce(end_reason, 'unknown'), count(*) FROM streams WHERE ended_at IS NOT NULL "
      "GROUP BY 1 ORDER BY 1");
  for (int i = 0; i < ended.rows(); ++i) d.streams_ended.emplace_back(ended.value(i, 0), std::stoll(ended.value(i, 1)));
  return d;
}

}  // namespace mirage::repo
