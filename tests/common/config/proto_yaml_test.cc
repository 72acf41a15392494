#include "common/config/proto_yaml.h"

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "common/config/yaml.h"
#include "common/status/macros.h"
#include "common/strings/strings.h"
#include "distill/v1/jobs.pb.h"
#include "distill/v1/teacher.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace distill::config {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::DynamicMessageFactory;
using google::protobuf::FileDescriptorProto;
using google::protobuf::Message;
using google::protobuf::TextFormat;
using google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;

// A message with a field of every kind ReadProto handles, built at run time so that the test needs no
// .proto of its own in the build. As a .proto:
//
//   enum DarkColor { DARK_COLOR_UNSPECIFIED = 0; DARK_COLOR_DEEP_RED = 1; DARK_COLOR_NAVY = 2; }
//   enum Plain { FIRST = 0; SECOND = 1; }       // values without the type's prefix
//   message Inner { string name = 1; int32 size = 2; }
//   message Everything {
//     int32 i32 = 1; int64 i64 = 2; uint32 u32 = 3; uint64 u64 = 4; double f64 = 5; float f32 = 6;
//     bool flag = 7; string text = 8; bytes data = 9; DarkColor color = 10; Inner inner = 11;
//     repeated int32 ints = 12; repeated double reals = 13; repeated bool flags = 14;
//     repeated string words = 15; repeated DarkColor colors = 16; repeated Inner inners = 17;
//     map<string, int32> counts = 18;
//     oneof choice { string word = 19; Inner boxed = 20; }
//     optional int32 maybe = 21;
//     Plain plain = 22; repeated uint64 bigs = 23; repeated float smalls = 24;
//     map<int32, string> by_number = 25;
//   }
constexpr char kTestFile[] = R"pb(
  name: "proto_yaml_test.proto"
  package: "test"
  syntax: "proto3"
  enum_type {
    name: "DarkColor"
    value { name: "DARK_COLOR_UNSPECIFIED" number: 0 }
    value { name: "DARK_COLOR_DEEP_RED" number: 1 }
    value { name: "DARK_COLOR_NAVY" number: 2 }
  }
  enum_type {
    name: "Plain"
    value { name: "FIRST" number: 0 }
    value { name: "SECOND" number: 1 }
  }
  message_type {
    name: "Inner"
    field { name: "name" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "size" number: 2 label: LABEL_OPTIONAL type: TYPE_INT32 }
  }
  message_type {
    name: "Everything"
    field { name: "i32" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
    field { name: "i64" number: 2 label: LABEL_OPTIONAL type: TYPE_INT64 }
    field { name: "u32" number: 3 label: LABEL_OPTIONAL type: TYPE_UINT32 }
    field { name: "u64" number: 4 label: LABEL_OPTIONAL type: TYPE_UINT64 }
    field { name: "f64" number: 5 label: LABEL_OPTIONAL type: TYPE_DOUBLE }
    field { name: "f32" number: 6 label: LABEL_OPTIONAL type: TYPE_FLOAT }
    field { name: "flag" number: 7 label: LABEL_OPTIONAL type: TYPE_BOOL }
    field { name: "text" number: 8 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "data" number: 9 label: LABEL_OPTIONAL type: TYPE_BYTES }
    field { name: "color" number: 10 label: LABEL_OPTIONAL type: TYPE_ENUM type_name: ".test.DarkColor" }
    field { name: "inner" number: 11 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".test.Inner" }
    field { name: "ints" number: 12 label: LABEL_REPEATED type: TYPE_INT32 }
    field { name: "reals" number: 13 label: LABEL_REPEATED type: TYPE_DOUBLE }
    field { name: "flags" number: 14 label: LABEL_REPEATED type: TYPE_BOOL }
    field { name: "words" number: 15 label: LABEL_REPEATED type: TYPE_STRING }
    field { name: "colors" number: 16 label: LABEL_REPEATED type: TYPE_ENUM type_name: ".test.DarkColor" }
    field { name: "inners" number: 17 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".test.Inner" }
    field {
      name: "counts"
      number: 18
      label: LABEL_REPEATED
      type: TYPE_MESSAGE
      type_name: ".test.Everything.CountsEntry"
    }
    field { name: "word" number: 19 label: LABEL_OPTIONAL type: TYPE_STRING oneof_index: 0 }
    field {
      name: "boxed"
      number: 20
      label: LABEL_OPTIONAL
      type: TYPE_MESSAGE
      type_name: ".test.Inner"
      oneof_index: 0
    }
    field {
      name: "maybe"
      number: 21
      label: LABEL_OPTIONAL
      type: TYPE_INT32
      oneof_index: 1
      proto3_optional: true
    }
    field { name: "plain" number: 22 label: LABEL_OPTIONAL type: TYPE_ENUM type_name: ".test.Plain" }
    field { name: "bigs" number: 23 label: LABEL_REPEATED type: TYPE_UINT64 }
    field { name: "smalls" number: 24 label: LABEL_REPEATED type: TYPE_FLOAT }
    field {
      name: "by_number"
      number: 25
      label: LABEL_REPEATED
      type: TYPE_MESSAGE
      type_name: ".test.Everything.ByNumberEntry"
    }
    nested_type {
      name: "CountsEntry"
      field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
      field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_INT32 }
      options { map_entry: true }
    }
    nested_type {
      name: "ByNumberEntry"
      field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
      field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
      options { map_entry: true }
    }
    oneof_decl { name: "choice" }
    oneof_decl { name: "_maybe" }
  }
)pb";

const Descriptor* EverythingType() {
  static const DescriptorPool* const pool = [] {
    FileDescriptorProto file;
    if (!TextFormat::ParseFromString(kTestFile, &file)) return static_cast<DescriptorPool*>(nullptr);
    auto* built = new DescriptorPool();
    return built->BuildFile(file) != nullptr ? built : nullptr;
  }();
  return pool == nullptr ? nullptr : pool->FindMessageTypeByName("test.Everything");
}

std::unique_ptr<Message> NewEverything() {
  static DynamicMessageFactory factory;
  const Descriptor* type = EverythingType();
  return type == nullptr ? nullptr : std::unique_ptr<Message>(factory.GetPrototype(type)->New());
}

absl::Status ReadYaml(std::string_view text, Message* message) {
  ASSIGN_OR_RETURN(Document doc, Document::Parse(text, "t.yaml"));
  ReadProto(doc.Root(), message);
  return doc.Finish();
}

// Reads `yaml` into a fresh Everything and expects it to equal `expected` (text format).
void ExpectReads(std::string_view yaml, std::string_view expected) {
  std::unique_ptr<Message> actual = NewEverything();
  ASSERT_NE(actual, nullptr) << "the test descriptor does not build";
  absl::Status status = ReadYaml(yaml, actual.get());
  ASSERT_TRUE(status.ok()) << status;
  std::unique_ptr<Message> want(actual->New());
  ASSERT_TRUE(TextFormat::ParseFromString(std::string(expected), want.get())) << expected;
  std::string diff;
  MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&diff);
  EXPECT_TRUE(differencer.Compare(*want, *actual)) << diff << "got: " << actual->ShortDebugString();
}

// Reads `yaml` into a fresh Everything and expects INVALID_ARGUMENT with exactly `message`.
void ExpectProblems(std::string_view yaml, std::string_view message) {
  std::unique_ptr<Message> actual = NewEverything();
  ASSERT_NE(actual, nullptr) << "the test descriptor does not build";
  absl::Status status = ReadYaml(yaml, actual.get());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(std::string(status.message()), message);
}

TEST(ReadProtoTest, ReadsEveryScalarType) {
  ExpectReads(R"(
i32: -2147483648
i64: 9000000000
u32: 4294967295
u64: 18446744073709551615
f64: 2.5e-3
f32: 0.25
flag: True
text: 1.10
data: raw bytes
)",
              R"pb(i32: -2147483648
                   i64: 9000000000
                   u32: 4294967295
                   u64: 18446744073709551615
                   f64: 0.0025
                   f32: 0.25
                   flag: true
                   text: "1.10"
                   data: "raw bytes")pb");
}

TEST(ReadProtoTest, EmptyMappingLeavesEveryFieldUnset) {
  std::unique_ptr<Message> message = NewEverything();
  ASSERT_NE(message, nullptr);
  ASSERT_TRUE(ReadYaml("", message.get()).ok());
  EXPECT_EQ(message->ByteSizeLong(), 0u);
}

TEST(ReadProtoTest, EnumsTakeFullOrShortNamesInAnyCase) {
  for (std::string_view spelling :
       {"deep_red", "DEEP_RED", "Deep_Red", "DARK_COLOR_DEEP_RED", "dark_color_deep_red"}) {
    SCOPED_TRACE(spelling);
    ExpectReads(strings::Cat("color: ", spelling, "\n"), "color: DARK_COLOR_DEEP_RED");
  }
  ExpectReads("color: \"navy\"\n", "color: DARK_COLOR_NAVY");
  // UNSPECIFIED is accepted (it is the default), though the error message does not offer it.
  ExpectReads("color: unspecified\n", "");
  // Values that lack the type's prefix are written whole.
  ExpectReads("plain: second\n", "plain: SECOND");
}

TEST(ReadProtoTest, UnknownEnumValueListsTheShortNames) {
  ExpectProblems("color: green\n", "t.yaml:1: color: expected one of: deep_red, navy; got \"green\"");
  ExpectProblems("color: [navy]\n", "t.yaml:1: color: expected one of: deep_red, navy, got a list");
  ExpectProblems("color: 1\n", "t.yaml:1: color: expected one of: deep_red, navy; got \"1\"");
}

TEST(ReadProtoTest, NestedMessages) {
  ExpectReads("inner:\n  name: a\n  size: 3\n", R"pb(inner { name: "a" size: 3 })pb");
  // A null mapping is present and empty, as Node::Child reads it.
  std::unique_ptr<Message> message = NewEverything();
  ASSERT_NE(message, nullptr);
  ASSERT_TRUE(ReadYaml("inner:\n", message.get()).ok());
  EXPECT_TRUE(
      message->GetReflection()->HasField(*message, message->GetDescriptor()->FindFieldByName("inner")));
}

TEST(ReadProtoTest, RepeatedFieldsFromLists) {
  ExpectReads(R"(
ints: [1, -2, 3]
reals: [0.5, 2]
flags: [true, false]
words:
  - alpha
  - "beta gamma"
colors: [navy, DEEP_RED, DARK_COLOR_NAVY]
inners:
  - {name: x}
  - name: y
    size: 2
bigs: [18446744073709551615]
smalls: [1.5]
)",
              R"pb(
                ints: [ 1, -2, 3 ]
                reals: [ 0.5, 2 ]
                flags: [ true, false ]
                words: [ "alpha", "beta gamma" ]
                colors: [ DARK_COLOR_NAVY, DARK_COLOR_DEEP_RED, DARK_COLOR_NAVY ]
                inners { name: "x" }
                inners { name: "y" size: 2 }
                bigs: 18446744073709551615
                smalls: 1.5
              )pb");
}

TEST(ReadProtoTest, ListsReplaceWhatTheMessageHeld) {
  std::unique_ptr<Message> message = NewEverything();
  ASSERT_NE(message, nullptr);
  ASSERT_TRUE(TextFormat::ParseFromString("ints: [7, 8] words: \"old\" i32: 5", message.get()));
  ASSERT_TRUE(ReadYaml("ints: [1]\nwords:\n", message.get()).ok());
  EXPECT_EQ(message->ShortDebugString(), "i32: 5 ints: 1");
}

TEST(ReadProtoTest, ProblemsInListsNameTheElementAndItsLine) {
  ExpectProblems("ints:\n  - 1\n  - two\ncolors: [navy,\n  green]\n",
                 "t.yaml:3: ints[1]: expected an integer, got \"two\"\n"
                 "t.yaml:5: colors[1]: expected one of: deep_red, navy; got \"green\"");
  ExpectProblems("ints: 3\n", "t.yaml:1: ints: expected a list, got \"3\"");
  ExpectProblems("inners: [{name: a}, b]\n", "t.yaml:1: inners[1]: expected a mapping, got \"b\"");
}

TEST(ReadProtoTest, MapsWithStringKeys) {
  ExpectReads("counts: {apples: 3, pears: 0}\n", R"pb(counts { key: "apples" value: 3 }
                                                      counts { key: "pears" value: 0 })pb");
  ExpectProblems("counts:\n  apples: many\n", "t.yaml:2: counts.apples: expected an integer, got \"many\"");
  ExpectProblems("by_number: {1: one}\n",
                 "t.yaml:1: by_number: unsupported field type: a map with int32 keys");
}

TEST(ReadProtoTest, OneofMembersAreOrdinaryKeys) {
  ExpectReads("word: hello\n", R"pb(word: "hello")pb");
  ExpectReads("boxed: {size: 4}\n", R"pb(boxed { size: 4 })pb");
}

TEST(ReadProtoTest, TwoMembersOfOneOneofAreAProblemNamingBoth) {
  ExpectProblems(
      "word: hello\nboxed: {size: 4}\n",
      "t.yaml:2: boxed: cannot be set together with \"word\" (both belong to oneof \"choice\"; set only "
      "one)");
}

TEST(ReadProtoTest, OptionalFieldsHavePresenceExactlyWhenTheKeyIsPresent) {
  const Descriptor* type = EverythingType();
  ASSERT_NE(type, nullptr);
  const auto* maybe = type->FindFieldByName("maybe");
  ASSERT_TRUE(maybe->has_presence());

  std::unique_ptr<Message> absent = NewEverything();
  ASSERT_TRUE(ReadYaml("i32: 1\n", absent.get()).ok());
  EXPECT_FALSE(absent->GetReflection()->HasField(*absent, maybe));

  std::unique_ptr<Message> zero = NewEverything();
  ASSERT_TRUE(ReadYaml("maybe: 0\n", zero.get()).ok());
  EXPECT_TRUE(zero->GetReflection()->HasField(*zero, maybe));
  EXPECT_EQ(zero->GetReflection()->GetInt32(*zero, maybe), 0);

  v1::SamplingParams sampling;
  ASSERT_TRUE(ReadYaml("temperature: 0\nseed: 0\n", &sampling).ok());
  EXPECT_TRUE(sampling.has_temperature());
  EXPECT_TRUE(sampling.has_seed());
  EXPECT_FALSE(sampling.has_top_p());
}

TEST(ReadProtoTest, ArtifactRefMayBeAPlainStringMeaningItsUri) {
  v1::StudentInit student;
  ASSERT_TRUE(
      ReadYaml("checkpoint: ./flan-t5-small\ntokenizer: {uri: artifact://tok/spiece.model, size_bytes: 12}\n",
               &student)
          .ok());
  EXPECT_EQ(student.source_case(), v1::StudentInit::kCheckpoint);
  EXPECT_EQ(student.checkpoint().ShortDebugString(), "uri: \"./flan-t5-small\"");
  EXPECT_EQ(student.tokenizer().uri(), "artifact://tok/spiece.model");
  EXPECT_EQ(student.tokenizer().size_bytes(), 12);
}

TEST(ReadProtoTest, UnknownKeyNamesFileLineAndSuggestsTheField) {
  ExpectProblems("i32: 1\ninner:\n  name: a\n  sise: 2\n",
                 "t.yaml:4: inner.sise: unknown key (did you mean \"size\"?)");
  ExpectProblems("colour: navy\n", "t.yaml:1: colour: unknown key (did you mean \"color\"?)");
}

TEST(ReadProtoTest, ScalarsAreTypedStrictly) {
  ExpectProblems(
      "i32: \"12\"\n",
      "t.yaml:1: i32: expected an integer, got the quoted string \"12\" (write it without quotes)");
  ExpectProblems("i32: 2147483648\n",
                 "t.yaml:1: i32: expected an integer in [-2147483648, 2147483647], got 2147483648");
  ExpectProblems("u64: -1\n", "t.yaml:1: u64: expected an integer in [0, 18446744073709551615], got -1");
  ExpectProblems("u64: 18446744073709551616\n",
                 "t.yaml:1: u64: expected an integer in [0, 18446744073709551615], got 18446744073709551616");
  ExpectProblems("f64: fast\n", "t.yaml:1: f64: expected a number, got \"fast\"");
  ExpectProblems("f32: 1e39\n", "t.yaml:1: f32: expected a number in the range of a float, got 1e39");
  ExpectProblems("flag: yes\n", "t.yaml:1: flag: expected true or false, got \"yes\"");
  ExpectProblems("text: [a]\n", "t.yaml:1: text: expected a string, got a list");
  ExpectProblems("inner: 5\n", "t.yaml:1: inner: expected a mapping, got \"5\"");
  ExpectProblems("i32:\n", "t.yaml:1: i32: expected an integer, got null");
}

TEST(ReadProtoTest, EveryProblemIsReportedSortedByLine) {
  ExpectProblems("i32: x\ninner: {size: y}\nnope: 1\n",
                 "t.yaml:1: i32: expected an integer, got \"x\"\n"
                 "t.yaml:2: inner.size: expected an integer, got \"y\"\n"
                 "t.yaml:3: nope: unknown key");
}

TEST(ReadProtoTest, WellKnownTypesAreUnsupported) {
  v1::StageStatus status;
  absl::Status read = ReadYaml("done: 3\nstart_time: {seconds: 1}\n", &status);
  EXPECT_EQ(read.code(), absl::StatusCode::kInvalidArgument);
  // Only this problem: the key is not also reported as unknown.
  EXPECT_EQ(std::string(read.message()),
            "t.yaml:2: start_time: unsupported field type google.protobuf.Timestamp");
}

TEST(EnumShortNameTest, StripsTheTypeNamePrefix) {
  EXPECT_EQ(ShortName(v1::OBJECTIVE_STEP_BY_STEP), "step_by_step");
  EXPECT_EQ(ShortName(v1::DATASET_FORMAT_JSONL), "jsonl");
  EXPECT_EQ(ShortName(v1::LABEL_SOURCE_GOLD_ONLY), "gold_only");
  EXPECT_EQ(ShortName(v1::TASK_TYPE_MULTIPLE_CHOICE), "multiple_choice");
  // OpenAiEndpoint's values are OPENAI_ENDPOINT_*: word breaks need not follow the type name's capitals.
  EXPECT_EQ(ShortName(v1::OPENAI_ENDPOINT_CHAT_COMPLETIONS), "chat_completions");
  EXPECT_EQ(ShortName(static_cast<v1::Objective>(99)), "99");
}

TEST(EnumShortNameTest, ValuesWithoutThePrefixKeepTheirName) {
  const Descriptor* type = EverythingType();
  ASSERT_NE(type, nullptr);
  const auto* plain = type->file()->FindEnumTypeByName("Plain");
  ASSERT_NE(plain, nullptr);
  EXPECT_EQ(EnumShortName(plain->FindValueByName("SECOND")), "second");
}

}  // namespace
}  // namespace distill::config
