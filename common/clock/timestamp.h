#ifndef DISTILL_COMMON_CLOCK_TIMESTAMP_H_
#define DISTILL_COMMON_CLOCK_TIMESTAMP_H_

// absl::Time ↔ google.protobuf.Timestamp, the time fields of every distill message (create_time, events).

#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

namespace distill {

// Nanosecond precision; times before 1970 work too (nanos stays in [0, 1e9)).
google::protobuf::Timestamp ToTimestamp(absl::Time t);
absl::Time FromTimestamp(const google::protobuf::Timestamp& t);

}  // namespace distill

#endif  // DISTILL_COMMON_CLOCK_TIMESTAMP_H_
