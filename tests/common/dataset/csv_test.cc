// ParseCsv: RFC 4180 quoting, line breaks inside quotes with the records' starting lines, CRLF, a
// byte-order mark, skipped empty lines, and errors that name the file and line.

#include "common/dataset/csv.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace distill::dataset {
namespace {

using ::testing::ElementsAre;

std::vector<CsvRecord> Parse(std::string_view text) {
  absl::StatusOr<std::vector<CsvRecord>> records = ParseCsv(text, "data.csv");
  EXPECT_TRUE(records.ok()) << records.status();
  return records.ok() ? *records : std::vector<CsvRecord>();
}

void ExpectInvalid(std::string_view text, std::string_view message) {
  absl::StatusOr<std::vector<CsvRecord>> records = ParseCsv(text, "data.csv");
  ASSERT_FALSE(records.ok()) << "parsed " << records->size() << " records";
  EXPECT_EQ(records.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(records.status().message()), message);
}

TEST(CsvTest, SplitsFieldsAndRecords) {
  std::vector<CsvRecord> records = Parse("id,input,gold\n1,two plus two,4\n2,,\n");
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].line, 1);
  EXPECT_THAT(records[0].fields, ElementsAre("id", "input", "gold"));
  EXPECT_EQ(records[1].line, 2);
  EXPECT_THAT(records[1].fields, ElementsAre("1", "two plus two", "4"));
  EXPECT_EQ(records[2].line, 3);
  EXPECT_THAT(records[2].fields, ElementsAre("2", "", ""));
}

TEST(CsvTest, LastRecordWithoutANewline) {
  std::vector<CsvRecord> records = Parse("a,b\nc,");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_THAT(records[1].fields, ElementsAre("c", ""));
  EXPECT_EQ(records[1].line, 2);
  EXPECT_THAT(Parse("\"q\"")[0].fields, ElementsAre("q"));
}

TEST(CsvTest, QuotedFieldsHoldCommasAndDoubledQuotes) {
  std::vector<CsvRecord> records = Parse(R"("a, b","say ""hi""","",plain)"
                                         "\n");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_THAT(records[0].fields, ElementsAre("a, b", "say \"hi\"", "", "plain"));
  EXPECT_THAT(Parse("\"\"\"\"\n")[0].fields, ElementsAre("\""));
  EXPECT_THAT(Parse("\"x\"\"\",y\n")[0].fields, ElementsAre("x\"", "y"));
}

TEST(CsvTest, LineBreaksInsideQuotesKeepRecordLines) {
  std::vector<CsvRecord> records = Parse(
      "id,input\n"
      "1,\"first line\nsecond line\nthird line\"\n"
      "2,\"one\n\ntwo\"\n"
      "3,last\n");
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[1].line, 2);
  EXPECT_THAT(records[1].fields, ElementsAre("1", "first line\nsecond line\nthird line"));
  EXPECT_EQ(records[2].line, 5);
  EXPECT_THAT(records[2].fields, ElementsAre("2", "one\n\ntwo"));
  EXPECT_EQ(records[3].line, 8);
  EXPECT_THAT(records[3].fields, ElementsAre("3", "last"));
}

TEST(CsvTest, CrlfLineEnds) {
  std::vector<CsvRecord> records = Parse("a,b\r\nc,\"d\r\ne\"\r\nf,g\r\n");
  ASSERT_EQ(records.size(), 3u);
  EXPECT_THAT(records[0].fields, ElementsAre("a", "b"));
  EXPECT_EQ(records[1].line, 2);
  // Inside quotes the line break is data and kept as written.
  EXPECT_THAT(records[1].fields, ElementsAre("c", "d\r\ne"));
  EXPECT_EQ(records[2].line, 4);
  EXPECT_THAT(records[2].fields, ElementsAre("f", "g"));
}

TEST(CsvTest, SkipsAByteOrderMark) {
  std::vector<CsvRecord> records = Parse("\xEF\xBB\xBFid,input\n1,q\n");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_THAT(records[0].fields, ElementsAre("id", "input"));
  EXPECT_EQ(records[0].line, 1);
  EXPECT_THAT(Parse("\xEF\xBB\xBF\"id\",x\n")[0].fields, ElementsAre("id", "x"));
  EXPECT_TRUE(Parse("\xEF\xBB\xBF").empty());
}

TEST(CsvTest, SkipsEmptyLinesButNotEmptyQuotedFields) {
  std::vector<CsvRecord> records = Parse("\na\n\n\r\n\nb\n\n");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].line, 2);
  EXPECT_THAT(records[0].fields, ElementsAre("a"));
  EXPECT_EQ(records[1].line, 6);
  EXPECT_THAT(records[1].fields, ElementsAre("b"));
  EXPECT_TRUE(Parse("").empty());
  EXPECT_TRUE(Parse("\n\n").empty());

  // A quoted empty field is a value, and a lone comma is two of them.
  records = Parse("\"\"\n,\n");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_THAT(records[0].fields, ElementsAre(""));
  EXPECT_THAT(records[1].fields, ElementsAre("", ""));
}

TEST(CsvTest, AnUnterminatedQuoteNamesTheLineItStartsOn) {
  ExpectInvalid("id,input\n1,\"never closed\n2,x\n", "data.csv:2: unterminated quoted field");
  ExpectInvalid("\"", "data.csv:1: unterminated quoted field");
}

TEST(CsvTest, AStrayQuoteNamesItsLine) {
  ExpectInvalid("id,input\n1,say \"hi\"\n",
                "data.csv:2: a quote inside an unquoted field (quote the whole field and double it)");
  // The line counts the line breaks inside an earlier quoted field.
  ExpectInvalid("a,\"x\ny\"\nb,c\"\n",
                "data.csv:3: a quote inside an unquoted field (quote the whole field and double it)");
  ExpectInvalid("a,\"quoted\"tail\n", "data.csv:1: text after a closing quote");
}

}  // namespace
}  // namespace distill::dataset
