// Whole-service totals for the metrics (metrics::DatabaseSample): read by
// each API replica when Prometheus scrapes it.
#pragma once

#include "db/connection.h"
#include "metrics/metrics.h"

namespace mirage::repo {

metrics::DatabaseSample totals(db::Connection& c);

}  // namespace mirage::repo
