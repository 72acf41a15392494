// LoadDataset on real files: JSON lines and CSV with the columns a spec names, input templates, the
// errors a bad row gives (file and line), max_examples, random and given splits, the synthetic task, and
// artifact:// URIs.

#include "services/coordinator/pipeline/dataset_loader.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace distill::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::vector<std::string> Ids(const std::vector<v1::Example>& examples) {
  std::vector<std::string> ids;
  for (const v1::Example& example : examples) ids.push_back(example.id());
  return ids;
}

// The ids as numbers, to check that a split part keeps file order.
std::vector<int> Numbers(const std::vector<v1::Example>& examples) {
  std::vector<int> numbers;
  for (const v1::Example& example : examples) numbers.push_back(std::stoi(example.id().substr(1)));
  return numbers;
}

class DatasetLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "dataset_loader_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ + "/artifacts");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `text` to `name` under the test's directory and returns its absolute path.
  std::string Write(const std::string& name, std::string_view text) {
    const std::string path = dir_ + "/" + name;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream out(path, std::ios::binary);
    out << text;
    return path;
  }
  // `n` JSONL examples with ids "e1".."en".
  std::string WriteNumbered(const std::string& name, int n) {
    std::string text;
    for (int i = 1; i <= n; ++i) {
      text += "{\"id\": \"e" + std::to_string(i) + "\", \"input\": \"question " + std::to_string(i) + "\"}\n";
    }
    return Write(name, text);
  }
  // A source reading `uri` with the ids from column "id" and a given test file.
  v1::DatasetSource Given(const std::string& uri, const std::string& test_uri) {
    v1::DatasetSource source;
    source.set_uri(uri);
    source.mutable_split()->mutable_given()->set_test_uri(test_uri);
    return source;
  }
  absl::StatusOr<SplitDataset> Load(const v1::DatasetSource& source) { return LoadDataset(source, root()); }
  std::string root() const { return dir_ + "/artifacts"; }

  std::string dir_;
};

void ExpectInvalid(const absl::StatusOr<SplitDataset>& data, std::string_view fragment) {
  ASSERT_FALSE(data.ok()) << "loaded " << data->train.size() << " training examples";
  EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument) << data.status();
  EXPECT_THAT(data.status().message(), HasSubstr(fragment));
}

TEST_F(DatasetLoaderTest, JsonLinesWithCustomColumnNames) {
  const std::string train =
      Write("train.jsonl",
            R"({"qid": "a", "question": "Pick one.", "answer": "b", "options": ["x", "y"]})"
            "\n"
            R"({"qid": 7, "question": "How many?", "answer": 42, "options": [{"label": "p", "text": "t"}]})"
            "\n"
            "\n"
            R"({"qid": "c", "question": "Half?", "answer": 2.5, "options": []})"
            "\n");
  const std::string test =
      Write("test.jsonl", R"({"qid": "t1", "question": "Q", "answer": 1, "options": []})");
  v1::DatasetSource source = Given(train, test);
  source.mutable_columns()->set_id("qid");
  source.mutable_columns()->set_input("question");
  source.mutable_columns()->set_gold("answer");
  source.mutable_columns()->set_choices("options");

  absl::StatusOr<SplitDataset> data = Load(source);
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_THAT(Ids(data->train), ElementsAre("a", "7", "c"));
  const v1::Example& a = data->train[0];
  EXPECT_EQ(a.input(), "Pick one.");
  EXPECT_EQ(a.gold(), "b");
  ASSERT_EQ(a.choices_size(), 2);
  EXPECT_EQ(a.choices(1).text(), "y");
  // Numeric gold keeps its number's text.
  EXPECT_EQ(data->train[1].gold(), "42");
  ASSERT_EQ(data->train[1].choices_size(), 1);
  EXPECT_EQ(data->train[1].choices(0).label(), "p");
  EXPECT_EQ(data->train[2].gold(), "2.5");
  EXPECT_EQ(data->train[2].choices_size(), 0);
  EXPECT_THAT(Ids(data->test), ElementsAre("t1"));
  EXPECT_EQ(data->test[0].gold(), "1");
  EXPECT_THAT(data->validation, IsEmpty());
  EXPECT_EQ(data->rows_read, 4);
}

TEST_F(DatasetLoaderTest, DefaultColumnsUseInputAndTheLineNumberAsId) {
  const std::string train = Write("train.jsonl", "{\"input\": \"one\"}\n{\"input\": \"two\"}\n");
  const std::string test = Write("test.jsonl", "{\"input\": \"three\"}\n");
  absl::StatusOr<SplitDataset> data = Load(Given(train, test));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(Ids(data->train), ElementsAre("1", "2"));
  EXPECT_EQ(data->train[1].input(), "two");
  // Without a gold column there is no gold.
  EXPECT_FALSE(data->train[0].has_gold());
}

TEST_F(DatasetLoaderTest, CsvWithAHeaderAndPipeSeparatedChoices) {
  const std::string train = Write("train.csv",
                                  "id,question,answer,options\r\n"
                                  "q1,\"Which colour, of these?\",b,red|green|blue\r\n"
                                  "q2,\"Two\nlines\",,\r\n"
                                  "q3,Sum?,12,\r\n");
  const std::string test = Write("test.csv", "id,question,answer,options\nt1,Q,a,yes|no\n");
  v1::DatasetSource source = Given(train, test);
  source.mutable_columns()->set_id("id");
  source.mutable_columns()->set_input("question");
  source.mutable_columns()->set_gold("answer");
  source.mutable_columns()->set_choices("options");

  absl::StatusOr<SplitDataset> data = Load(source);
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_THAT(Ids(data->train), ElementsAre("q1", "q2", "q3"));
  const v1::Example& q1 = data->train[0];
  EXPECT_EQ(q1.input(), "Which colour, of these?");
  EXPECT_EQ(q1.gold(), "b");
  ASSERT_EQ(q1.choices_size(), 3);
  EXPECT_EQ(q1.choices(0).text(), "red");
  EXPECT_EQ(q1.choices(2).text(), "blue");
  // An empty cell: no gold, no choices.
  EXPECT_EQ(data->train[1].input(), "Two\nlines");
  EXPECT_FALSE(data->train[1].has_gold());
  EXPECT_EQ(data->train[1].choices_size(), 0);
  EXPECT_EQ(data->train[2].gold(), "12");
  EXPECT_EQ(data->train[2].choices_size(), 0);
  ASSERT_EQ(data->test.size(), 1u);
  EXPECT_EQ(data->test[0].choices_size(), 2);
}

TEST_F(DatasetLoaderTest, CsvRowWithTheWrongFieldCountNamesItsLine) {
  const std::string train = Write("train.csv", "id,input\na,one\nb,two,extra\n");
  const std::string test = Write("test.csv", "id,input\nt,x\n");
  ExpectInvalid(Load(Given(train, test)), train + ":3: 3 fields, but the header has 2");
}

TEST_F(DatasetLoaderTest, CsvSyntaxErrorsNameTheFile) {
  const std::string train = Write("train.csv", "id,input\na,\"unterminated\n");
  const std::string test = Write("test.csv", "id,input\nt,x\n");
  ExpectInvalid(Load(Given(train, test)), train + ":2: unterminated quoted field");
}

TEST_F(DatasetLoaderTest, InputTemplateJoinsColumnsAndKeepsLiteralBraces) {
  const std::string train =
      Write("train.jsonl", R"({"premise": "It rains.", "hypothesis": "It is wet.", "n": 3})"
                           "\n");
  const std::string test = Write("test.jsonl", R"({"premise": "P", "hypothesis": "H", "n": 1})");
  v1::DatasetSource source = Given(train, test);
  source.set_input_template("Premise: {premise}\nHypothesis: {hypothesis} {{not a column}} #{n}");
  absl::StatusOr<SplitDataset> data = Load(source);
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ(data->train.size(), 1u);
  EXPECT_EQ(data->train[0].input(), "Premise: It rains.\nHypothesis: It is wet. {not a column} #3");
  EXPECT_EQ(data->test[0].input(), "Premise: P\nHypothesis: H {not a column} #1");
}

TEST_F(DatasetLoaderTest, InputTemplateWithAnUnknownColumnNamesFileAndLine) {
  const std::string train = Write("train.jsonl", "{\"premise\": \"a\"}\n{\"other\": \"b\"}\n");
  const std::string test = Write("test.jsonl", "{\"premise\": \"c\"}\n");
  v1::DatasetSource source = Given(train, test);
  source.set_input_template("Premise: {premise}");
  ExpectInvalid(Load(source), train + ":2: dataset.input_template: no column \"premise\"");

  source.set_input_template("Premise: {premise");
  ExpectInvalid(Load(source), "dataset.input_template: unclosed \"{\"");
  source.set_input_template("Premise} {premise}");
  ExpectInvalid(Load(source), "dataset.input_template: lone \"}\"");
}

TEST_F(DatasetLoaderTest, AMissingInputColumnNamesFileLineAndColumn) {
  const std::string train = Write("train.jsonl", "{\"question\": \"ok\"}\n{\"prompt\": \"no question\"}\n");
  const std::string test = Write("test.jsonl", "{\"question\": \"t\"}\n");
  v1::DatasetSource source = Given(train, test);
  source.mutable_columns()->set_input("question");
  ExpectInvalid(Load(source),
                train + ":2: input column \"question\" missing or not a string (dataset.columns.input)");

  // A missing id column too.
  source.mutable_columns()->set_id("qid");
  ExpectInvalid(Load(source), train + ":1: no id column \"qid\" (dataset.columns.id)");
}

TEST_F(DatasetLoaderTest, AnEmptyInputIsAnError) {
  const std::string train = Write("train.jsonl", "{\"input\": \"ok\"}\n{\"input\": \"  \\n\"}\n");
  const std::string test = Write("test.jsonl", "{\"input\": \"t\"}\n");
  ExpectInvalid(Load(Given(train, test)), train + ":2: input: empty");
}

TEST_F(DatasetLoaderTest, ADuplicateIdNamesBothLines) {
  const std::string train = Write("train.jsonl",
                                  "{\"id\": \"a\", \"input\": \"1\"}\n"
                                  "{\"id\": \"b\", \"input\": \"2\"}\n"
                                  "{\"id\": \"a\", \"input\": \"3\"}\n");
  const std::string test = Write("test.jsonl", "{\"id\": \"t\", \"input\": \"t\"}\n");
  v1::DatasetSource source = Given(train, test);
  source.mutable_columns()->set_id("id");
  ExpectInvalid(Load(source), train + ":3: id: \"a\" repeats the id of line 1");
}

TEST_F(DatasetLoaderTest, AMalformedJsonLineNamesFileAndLine) {
  const std::string train = Write("train.jsonl", "{\"input\": \"ok\"}\n{\"input\": \"broken\"\n");
  const std::string test = Write("test.jsonl", "{\"input\": \"t\"}\n");
  ExpectInvalid(Load(Given(train, test)), train + ":2: malformed JSON");

  const std::string array = Write("array.jsonl", "{\"input\": \"ok\"}\n[1, 2]\n");
  ExpectInvalid(Load(Given(array, test)), array + ":2: expected a JSON object");

  const std::string bad_gold = Write("bad_gold.jsonl", "{\"input\": \"ok\", \"g\": [1]}\n");
  v1::DatasetSource source = Given(bad_gold, test);
  source.mutable_columns()->set_gold("g");
  ExpectInvalid(Load(source), bad_gold + ":1: gold: expected a string or number");
}

TEST_F(DatasetLoaderTest, AMissingFileIsNotFoundNamingTheField) {
  const std::string test = Write("test.jsonl", "{\"input\": \"t\"}\n");
  absl::StatusOr<SplitDataset> data = Load(Given(dir_ + "/nope.jsonl", test));
  EXPECT_EQ(data.status().code(), absl::StatusCode::kNotFound) << data.status();
  EXPECT_THAT(data.status().message(), HasSubstr("dataset.uri: cannot read " + dir_ + "/nope.jsonl"));

  const std::string train = WriteNumbered("train.jsonl", 3);
  data = Load(Given(train, dir_ + "/nope.jsonl"));
  EXPECT_EQ(data.status().code(), absl::StatusCode::kNotFound) << data.status();
  EXPECT_THAT(data.status().message(), HasSubstr("dataset.split.given.test_uri"));
}

TEST_F(DatasetLoaderTest, MaxExamplesTakesTheFirstRowsOfTheTrainFile) {
  const std::string train = Write("train.jsonl",
                                  "{\"id\": \"e1\", \"input\": \"1\"}\n"
                                  "{\"id\": \"e2\", \"input\": \"2\"}\n"
                                  "{\"id\": \"e3\", \"input\": \"3\"}\n"
                                  "{\"id\": \"e4\", \"input\": \"4\"}\n");
  const std::string test = WriteNumbered("test.jsonl", 5);
  v1::DatasetSource source = Given(train, test);
  source.mutable_columns()->set_id("id");
  source.set_max_examples(2);
  absl::StatusOr<SplitDataset> data = Load(source);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(Ids(data->train), ElementsAre("e1", "e2"));
  EXPECT_EQ(data->train[1].input(), "2");
  // The test file is not limited.
  EXPECT_EQ(data->test.size(), 5u);
  EXPECT_EQ(data->rows_read, 7);
}

TEST_F(DatasetLoaderTest, RandomSplitIsDeterministicDisjointAndKeepsFileOrder) {
  v1::DatasetSource source;
  source.set_uri(WriteNumbered("train.jsonl", 100));
  source.mutable_columns()->set_id("id");
  source.mutable_split()->mutable_random()->set_seed(7);
  source.mutable_split()->mutable_random()->set_test_fraction(0.2);
  source.mutable_split()->set_validation_fraction(0.1);

  absl::StatusOr<SplitDataset> data = Load(source);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->test.size(), 20u);
  EXPECT_EQ(data->validation.size(), 8u);  // 10% of the 80 left after the test split
  EXPECT_EQ(data->train.size(), 72u);
  EXPECT_EQ(data->rows_read, 100);

  std::set<std::string> all;
  for (const auto* part : {&data->train, &data->validation, &data->test}) {
    for (const v1::Example& example : *part) EXPECT_TRUE(all.insert(example.id()).second) << example.id();
    const std::vector<int> numbers = Numbers(*part);
    EXPECT_TRUE(std::is_sorted(numbers.begin(), numbers.end()));
  }
  EXPECT_EQ(all.size(), 100u);

  absl::StatusOr<SplitDataset> again = Load(source);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(Ids(again->train), Ids(data->train));
  EXPECT_EQ(Ids(again->validation), Ids(data->validation));
  EXPECT_EQ(Ids(again->test), Ids(data->test));

  source.mutable_split()->mutable_random()->set_seed(8);
  absl::StatusOr<SplitDataset> other = Load(source);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->test.size(), 20u);
  EXPECT_NE(Ids(other->test), Ids(data->test));
}

TEST_F(DatasetLoaderTest, RandomSplitOfTinyDatasets) {
  v1::DatasetSource source;
  source.set_uri(WriteNumbered("two.jsonl", 2));
  source.mutable_columns()->set_id("id");
  source.mutable_split()->mutable_random()->set_test_fraction(0.01);
  absl::StatusOr<SplitDataset> data = Load(source);
  ASSERT_TRUE(data.ok()) << data.status();
  // At least one example on each side.
  EXPECT_EQ(data->train.size(), 1u);
  EXPECT_EQ(data->test.size(), 1u);

  source.set_uri(WriteNumbered("one.jsonl", 1));
  ExpectInvalid(Load(source), "dataset: 1 example(s) cannot be split into train and test");
}

TEST_F(DatasetLoaderTest, GivenSplitWithValidation) {
  v1::DatasetSource source = Given(WriteNumbered("train.jsonl", 10), WriteNumbered("test.jsonl", 4));
  source.mutable_columns()->set_id("id");
  source.mutable_split()->set_validation_fraction(0.2);
  absl::StatusOr<SplitDataset> data = Load(source);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->train.size(), 8u);
  EXPECT_EQ(data->validation.size(), 2u);
  EXPECT_THAT(Ids(data->test), ElementsAre("e1", "e2", "e3", "e4"));
  EXPECT_EQ(data->rows_read, 14);
}

TEST_F(DatasetLoaderTest, NoSplitOrAnEmptyTestFileIsAnError) {
  v1::DatasetSource source;
  source.set_uri(WriteNumbered("train.jsonl", 4));
  ExpectInvalid(Load(source), "dataset.split: random or given is required");
  source = Given(WriteNumbered("train.jsonl", 4), Write("empty.jsonl", "\n"));
  ExpectInvalid(Load(source), "dataset: no test examples");
}

TEST_F(DatasetLoaderTest, SyntheticArithmetic) {
  v1::DatasetSource source;
  source.set_uri("synthetic:arith?count=50&seed=3&min_ops=1&max_ops=1");
  source.mutable_split()->mutable_random()->set_seed(1);
  source.mutable_split()->mutable_random()->set_test_fraction(0.2);
  absl::StatusOr<SplitDataset> data = Load(source);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->train.size() + data->test.size(), 50u);
  EXPECT_EQ(data->test.size(), 10u);
  EXPECT_EQ(data->rows_read, 50);
  std::set<std::string> ids;
  for (const auto* part : {&data->train, &data->test}) {
    for (const v1::Example& example : *part) {
      EXPECT_TRUE(ids.insert(example.id()).second) << example.id();
      EXPECT_THAT(example.id(), ::testing::StartsWith("arith-3-"));
      EXPECT_TRUE(example.has_gold()) << example.id();
      EXPECT_FALSE(example.gold().empty());
      EXPECT_THAT(example.input(), ::testing::EndsWith("?"));
    }
  }

  // The same URI gives the same examples; max_examples caps the count.
  absl::StatusOr<SplitDataset> again = Load(source);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->train.size(), data->train.size());
  EXPECT_EQ(again->train[0].input(), data->train[0].input());
  source.set_max_examples(10);
  absl::StatusOr<SplitDataset> capped = Load(source);
  ASSERT_TRUE(capped.ok()) << capped.status();
  EXPECT_EQ(capped->train.size() + capped->test.size(), 10u);
}

TEST_F(DatasetLoaderTest, SyntheticArithmeticRejectsBadParameters) {
  v1::DatasetSource source;
  source.mutable_split()->mutable_random()->set_test_fraction(0.2);
  auto load = [&](const std::string& uri) {
    source.set_uri(uri);
    return Load(source);
  };
  ExpectInvalid(load("synthetic:arith"), "dataset.uri: count: must be in [1, 10000000]");
  ExpectInvalid(load("synthetic:arith?count=0"), "dataset.uri: count: must be in [1, 10000000]");
  ExpectInvalid(load("synthetic:arith?count=20000000"), "dataset.uri: count: must be in [1, 10000000]");
  ExpectInvalid(load("synthetic:arith?count=-5"),
                "dataset.uri: \"count=-5\": expected name=non-negative integer");
  ExpectInvalid(load("synthetic:arith?count=ten"),
                "dataset.uri: \"count=ten\": expected name=non-negative integer");
  ExpectInvalid(load("synthetic:arith?count"), "dataset.uri: \"count\": expected name=non-negative integer");
  ExpectInvalid(load("synthetic:arith?count=5&"), "dataset.uri: \"\": expected name=non-negative integer");
  ExpectInvalid(load("synthetic:arith?count=5&speed=2"),
                "dataset.uri: unknown parameter \"speed\" (count, seed, min_ops, max_ops)");
  ExpectInvalid(load("synthetic:arith&count=5"), "dataset.uri: expected \"?\" after synthetic:arith");
}

TEST_F(DatasetLoaderTest, ArtifactUrisResolveUnderTheArtifactRoot) {
  Write("artifacts/datasets/train.jsonl", "{\"input\": \"a\"}\n{\"input\": \"b\"}\n");
  Write("artifacts/datasets/test.jsonl", "{\"input\": \"c\"}\n");
  absl::StatusOr<SplitDataset> data =
      Load(Given("artifact://datasets/train.jsonl", "artifact://datasets/test.jsonl"));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->train.size(), 2u);
  EXPECT_EQ(data->test[0].input(), "c");

  // file:// URIs name local files.
  data = Load(Given("file://" + root() + "/datasets/train.jsonl", "artifact://datasets/test.jsonl"));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->train.size(), 2u);

  // Not outside the store, and not relative paths.
  ExpectInvalid(Load(Given("artifact://../train.jsonl", "artifact://datasets/test.jsonl")),
                "dataset.uri: \"artifact://../train.jsonl\" must be a relative path inside the store");
  ExpectInvalid(Load(Given("datasets/train.jsonl", "artifact://datasets/test.jsonl")),
                "dataset.uri: expected");
  ExpectInvalid(Load(Given("artifact://datasets/train.jsonl", "artifact:///etc/passwd")),
                "dataset.split.given.test_uri: ");
}

}  // namespace
}  // namespace distill::coordinator
