#include "common/clock/timestamp.h"

#include "gtest/gtest.h"

namespace distill {
namespace {

TEST(TimestampTest, RoundTripsWithNanosecondsOnBothSidesOfTheEpoch) {
  for (absl::Time t : {absl::FromUnixNanos(1'763'740'800'123'456'789), absl::FromUnixNanos(-1'500'000'001),
                       absl::UnixEpoch()}) {
    const google::protobuf::Timestamp ts = ToTimestamp(t);
    EXPECT_GE(ts.nanos(), 0);
    EXPECT_LT(ts.nanos(), 1'000'000'000);
    EXPECT_EQ(FromTimestamp(ts), t);
  }
  const google::protobuf::Timestamp before = ToTimestamp(absl::FromUnixNanos(-1'500'000'001));
  EXPECT_EQ(before.seconds(), -2);
  EXPECT_EQ(before.nanos(), 499'999'999);
}

}  // namespace
}  // namespace distill
