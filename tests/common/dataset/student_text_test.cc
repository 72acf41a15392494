#include "common/dataset/student_text.h"

#include "gtest/gtest.h"

namespace distill::dataset {
namespace {

TEST(StudentTextTest, RendersEachObjectivesText) {
  EXPECT_EQ(PredictInput("How many?"), "predict: How many?");
  EXPECT_EQ(ExplainInput("How many?"), "explain: How many?");
  EXPECT_EQ(CotInput("How many?"), "How many? ###");
  EXPECT_EQ(CotTarget("3 + 4 = 7.", "7"), "3 + 4 = 7. --> 7 END");
}

TEST(StudentTextTest, CotAnswerAndRationaleFromGeneratedText) {
  EXPECT_EQ(CotAnswer(CotTarget("3 + 4 = 7.", "7")), "7");
  EXPECT_EQ(CotRationale(CotTarget("3 + 4 = 7.", "7")), "3 + 4 = 7.");
  // Generation cut before END; several arrows (the last one separates the answer); no arrow at all.
  EXPECT_EQ(CotAnswer("x --> 12"), "12");
  EXPECT_EQ(CotAnswer("a --> b --> yes END tail"), "yes");
  EXPECT_EQ(CotRationale("a --> b --> yes END"), "a --> b");
  EXPECT_EQ(CotAnswer(" 42 END"), "42");
  EXPECT_EQ(CotRationale("42"), "");
  EXPECT_EQ(CotAnswer(""), "");
}

}  // namespace
}  // namespace distill::dataset
