// Teacher accuracy on the real PaLM-540B completions released with Distilling Step-by-Step
// (../shared/data, see its README), computed with the curator's parser and normaliser, and compared
// example by example with a faithful re-implementation of the paper's own parsing code
// (google-research/distilling-step-by-step, data_utils.py: SVAMPDatasetLoader._parse_llm_output and
// ANLIDatasetLoader._parse_llm_output, scored as in its metrics.py: eval() of the expression for
// SVAMP, string equality for ANLI).

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/curator/answers/completion_parser.h"
#include "services/curator/answers/normalizer.h"
#include "tests/support/paths.h"

namespace distill::curator {
namespace {

const std::string kDataDir = ::distill::testing::SourceDir() + "/../shared/data";
constexpr std::string_view kNliLabels[] = {"entailment", "neutral", "contradiction"};

// One question of a split with the teacher's first (and only) completion.
struct Item {
  std::string input;
  std::string gold;  // SVAMP: the expression; ANLI: the label index "0".."2"
  std::string completion;
};

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

// Loads question lines and the aligned completion arrays; false (with a reason) when a file is
// missing or malformed.
bool LoadSplit(const std::string& questions, const std::vector<std::string>& completions, bool nli,
               std::vector<Item>* items, std::string* why) {
  std::string text;
  if (!ReadFile(kDataDir + "/" + questions, &text)) {
    *why = "missing " + questions;
    return false;
  }
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.contains("label") || !j.contains(nli ? "premise" : "input")) {
      *why = "malformed line in " + questions;
      return false;
    }
    Item item;
    if (nli) {
      item.input = "Premise: " + j["premise"].get<std::string>() + "\nHypothesis: " + j["hypothesis"].get<std::string>();
      item.gold = std::to_string(j["label"].get<int>());
    } else {
      item.input = j["input"].get<std::string>();
      item.gold = j["label"].get<std::string>();
    }
    items->push_back(std::move(item));
  }
  size_t next = 0;
  for (const std::string& file : completions) {
    if (!ReadFile(kDataDir + "/" + file, &text)) {
      *why = "missing " + file;
      return false;
    }
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_array()) {
      *why = "malformed " + file;
      return false;
    }
    for (const nlohmann::json& c : j) {
      if (next >= items->size() || !c.is_string()) {
        *why = "completions do not align with " + questions;
        return false;
      }
      (*items)[next++].completion = c.get<std::string>();
    }
  }
  if (next != items->size()) {
    *why = "completions do not align with " + questions;
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// The paper's parsing, re-implemented.

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string_view PyRstrip(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}
std::string_view PyLstrip(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  return s;
}

size_t CountOccurrences(std::string_view s, std::string_view needle) {
  size_t n = 0;
  for (size_t at = s.find(needle); at != std::string_view::npos; at = s.find(needle, at + needle.size())) ++n;
  return n;
}

// Python's `a, b = s.split(sep)`: exactly one separator, else the paper's code takes its except branch.
std::optional<std::string_view> PySplitSecond(std::string_view s, std::string_view sep) {
  if (CountOccurrences(s, sep) != 1) return std::nullopt;
  return s.substr(s.find(sep) + sep.size());
}

// re.search(r'\(.*\)', s).group(0): the leftmost '(' that has a ')' after it on its line, up to the
// last ')' of that line ('.' does not match a line break).
std::optional<std::string_view> PyParenRegex(std::string_view s) {
  for (size_t open = s.find('('); open != std::string_view::npos; open = s.find('(', open + 1)) {
    const size_t eol = std::min(s.find('\n', open), s.size());
    const size_t close = s.substr(0, eol).rfind(')');
    if (close != std::string_view::npos && close > open) return s.substr(open, close - open + 1);
  }
  return std::nullopt;
}

// SVAMPDatasetLoader._parse_llm_output: the label, or nullopt for its ' ' fallbacks.
std::optional<std::string> PaperSvampLabel(std::string_view output) {
  const std::string_view rationale_label = PyRstrip(output.substr(0, output.find("Q:")));
  const std::optional<std::string_view> label = PySplitSecond(rationale_label, "The answer is");
  if (!label.has_value()) return std::nullopt;
  const std::optional<std::string_view> paren = PyParenRegex(*label);
  if (!paren.has_value()) return std::nullopt;
  return std::string(*paren);
}

// Python's eval() restricted to what these labels contain: int/float literals, + - * /, unary signs,
// parentheses and the boolean operators `and` / `or` (which return an operand: "(34 + 40) and
// (62 - 17)" is 45). Anything else (names, commas) makes eval() raise or return a non-number in the
// paper's code, which scores it wrong: NaN here.
class PyArithmetic {
 public:
  explicit PyArithmetic(std::string_view s) : s_(s) {}
  double Eval() {
    const double v = Or();
    Skip();
    return (ok_ && pos_ == s_.size()) ? v : kNaN;
  }

 private:
  void Skip() {
    while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
  }
  bool Keyword(std::string_view word) {
    Skip();
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }
  double Or() {
    double v = And();
    while (ok_ && Keyword("or ")) {
      const double r = And();
      v = v != 0 ? v : r;
    }
    return v;
  }
  double And() {
    double v = Expr();
    while (ok_ && Keyword("and ")) {
      const double r = Expr();
      v = v == 0 ? v : r;
    }
    return v;
  }
  double Expr() {
    double v = Term();
    for (Skip(); ok_ && pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-'); Skip()) {
      const char op = s_[pos_++];
      const double r = Term();
      v = op == '+' ? v + r : v - r;
    }
    return v;
  }
  double Term() {
    double v = Unary();
    for (Skip(); ok_ && pos_ < s_.size() && (s_[pos_] == '*' || s_[pos_] == '/'); Skip()) {
      const char op = s_[pos_++];
      if (pos_ < s_.size() && s_[pos_] == op) return Fail();  // ** and // are not needed here
      const double r = Unary();
      if (op == '/' && r == 0) return Fail();  // ZeroDivisionError
      v = op == '*' ? v * r : v / r;
    }
    return v;
  }
  double Unary() {
    Skip();
    if (pos_ < s_.size() && (s_[pos_] == '-' || s_[pos_] == '+')) {
      const char op = s_[pos_++];
      const double v = Unary();
      return op == '-' ? -v : v;
    }
    if (pos_ < s_.size() && s_[pos_] == '(') {
      ++pos_;
      const double v = Or();
      Skip();
      if (pos_ >= s_.size() || s_[pos_] != ')') return Fail();
      ++pos_;
      return v;
    }
    const size_t begin = pos_;
    while (pos_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '.')) ++pos_;
    if (begin == pos_) return Fail();
    return std::stod(std::string(s_.substr(begin, pos_ - begin)));
  }
  double Fail() {
    ok_ = false;
    return kNaN;
  }

  std::string_view s_;
  size_t pos_ = 0;
  bool ok_ = true;
};

bool PaperSvampCorrect(const Item& item) {
  const std::optional<std::string> label = PaperSvampLabel(item.completion);
  if (!label.has_value()) return false;
  return PyArithmetic(*label).Eval() == PyArithmetic(item.gold).Eval();  // NaN never equals
}

// ANLIDatasetLoader._parse_llm_output: the label text ('' on its except branch).
std::string PaperAnliLabel(std::string_view output) {
  const std::string_view before = PyRstrip(output.substr(0, output.find("Premise:")));
  const std::optional<std::string_view> label = PySplitSecond(before, "So the answer is");
  if (!label.has_value()) return "";
  const std::string_view l = PyLstrip(*label);
  return std::string(l.substr(0, l.empty() ? 0 : l.size() - 1));  // label.lstrip()[:-1]
}

bool PaperAnliCorrect(const Item& item) {
  return PaperAnliLabel(item.completion) == kNliLabels[std::stoi(item.gold)];
}

// ---------------------------------------------------------------------------------------------
// An independent second reading, to confirm every example we count correct: the text after the last
// "the answer is" (any case) before the paper's runaway cut, up to the end of its sentence, taken
// literally (an expression evaluated as above; an NLI label word as is).

std::string SimpleAnswer(std::string_view output, std::string_view runaway) {
  std::string lower(PyRstrip(output.substr(0, output.find(runaway))));
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  constexpr std::string_view kCue = "the answer is";
  const size_t at = lower.rfind(kCue);
  if (at == std::string::npos) return "";
  std::string_view rest = PyLstrip(std::string_view(lower).substr(at + kCue.size()));
  size_t end = rest.size();
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '\n' || (rest[i] == '.' && (i + 1 == rest.size() || std::isspace(static_cast<unsigned char>(rest[i + 1]))))) {
      end = i;
      break;
    }
  }
  return std::string(rest.substr(0, end));
}

bool SimpleReadingCorrect(const Item& item, bool nli) {
  if (nli) return SimpleAnswer(item.completion, "Premise:") == kNliLabels[std::stoi(item.gold)];
  const double value = PyArithmetic(SimpleAnswer(item.completion, "Q:")).Eval();
  const double gold = PyArithmetic(item.gold).Eval();
  return std::fabs(value - gold) <= 1e-9 * std::max(1.0, std::fabs(gold));
}

// ---------------------------------------------------------------------------------------------
// Ours.

struct Outcome {
  bool correct = false;
  std::string parsed;  // our normalised answer, or the parse/normalise error
};

Outcome Ours(const AnswerNormalizer& normalizer, const Item& item) {
  v1::Example example;
  example.set_input(item.input);
  example.set_gold(item.gold);
  const absl::StatusOr<NormalizedAnswer> gold = normalizer.NormalizeGold(example);
  if (!gold.ok()) return {false, "gold: " + std::string(gold.status().message())};
  const absl::StatusOr<ParsedCompletionView> parsed = ParseCompletionText(item.completion);
  if (!parsed.ok()) return {false, std::string(parsed.status().message())};
  const absl::StatusOr<NormalizedAnswer> answer = normalizer.Normalize(example, parsed->answer);
  if (!answer.ok()) return {false, std::string(answer.status().message())};
  return {normalizer.Matches(*answer, *gold), answer->text};
}

struct Comparison {
  int total = 0;
  int ours = 0;
  int paper = 0;
  std::vector<bool> ours_correct;  // by example index
  std::set<int> only_ours;         // we count correct, the paper does not
  std::set<int> only_paper;        // the paper counts correct, we do not
};

Comparison Compare(const v1::TaskSpec& task, const std::vector<Item>& items, bool nli, std::string_view name) {
  const absl::StatusOr<AnswerNormalizer> normalizer = AnswerNormalizer::Create(task);
  EXPECT_TRUE(normalizer.ok()) << normalizer.status();
  Comparison c;
  if (!normalizer.ok()) return c;
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& item = items[i];
    const Outcome ours = Ours(*normalizer, item);
    const bool paper = nli ? PaperAnliCorrect(item) : PaperSvampCorrect(item);
    ++c.total;
    c.ours_correct.push_back(ours.correct);
    if (ours.correct) {
      EXPECT_TRUE(SimpleReadingCorrect(item, nli))
          << name << " #" << i << ": counted correct (" << ours.parsed << ", gold " << item.gold
          << ") but a literal reading of its answer sentence disagrees:\n" << item.completion;
    }
    c.ours += ours.correct;
    c.paper += paper;
    if (ours.correct == paper) continue;
    (ours.correct ? c.only_ours : c.only_paper).insert(static_cast<int>(i));
    const std::string paper_label = nli ? PaperAnliLabel(item.completion)
                                        : PaperSvampLabel(item.completion).value_or("<none>");
    std::string shown = item.completion.substr(0, FindRunawayContinuation(item.completion));
    if (shown.size() > 240) shown = "…" + shown.substr(shown.size() - 240);
    std::cout << name << " #" << i << (ours.correct ? " [only ours]" : " [only paper]") << " gold=" << item.gold
              << " ours=" << ours.parsed << " paper=" << paper_label << "\n    " << shown << "\n";
  }
  std::cout << name << ": ours " << c.ours << "/" << c.total << " = " << static_cast<double>(c.ours) / c.total
            << ", paper " << c.paper << "/" << c.total << " = " << static_cast<double>(c.paper) / c.total << "\n";
  return c;
}

v1::TaskSpec NumericTask() {
  v1::TaskSpec task;
  task.set_name("svamp");
  task.set_type(v1::TASK_TYPE_NUMERIC);
  return task;
}

class RealDataTest : public ::testing::Test {
 protected:
  // Loads a split or skips the test when the data is not there.
  std::vector<Item> Load(const std::string& questions, const std::vector<std::string>& completions, bool nli) {
    std::vector<Item> items;
    std::string why;
    if (!LoadSplit(questions, completions, nli, &items, &why)) {
      loaded_ = false;
      why_ = why;
    }
    return items;
  }
  bool loaded_ = true;
  std::string why_;
};

#define LOAD_OR_SKIP(var, ...)                       \
  const std::vector<Item> var = Load(__VA_ARGS__);   \
  if (!loaded_) GTEST_SKIP() << "no shared data: " << why_

TEST_F(RealDataTest, SvampTest) {
  LOAD_OR_SKIP(items, "svamp/svamp_test.json", {"svamp/palm/test_CoT_0.json"}, false);
  ASSERT_EQ(items.size(), 200u);
  const Comparison c = Compare(NumericTask(), items, false, "svamp test");
  EXPECT_EQ(c.paper, 148) << "the re-implementation of the paper's parser must reproduce its published count";
  EXPECT_GE(c.ours, 148);
  // Every difference is in our favour. The paper's greedy r'\(.*\)' ends at the last ')', so it drops
  // whatever follows a parenthesised head of the answer expression:
  EXPECT_TRUE(c.only_paper.empty());
  // #4 asks flour minus salt, gold (12 - 2) - 7 = 3; "The answer is (12 - 2) - 7." is 3, the paper
  //    reads "(12 - 2)" = 10.
  // #22 asks rows, gold 28 * (24 / 16) = 42; "(28 * 24) / 16" = 42, the paper reads "(28 * 24)".
  // #186 asks invitations left, gold (10 * 7) - 2 = 68; "(7 * 10) - 2" = 68, the paper reads "(7 * 10)".
  for (const int i : {4, 22, 186}) EXPECT_TRUE(c.only_ours.count(i)) << "svamp test #" << i;
}

TEST_F(RealDataTest, SvampTrain) {
  LOAD_OR_SKIP(items, "svamp/svamp_train.json", {"svamp/palm/train_CoT_0.json", "svamp/palm/train_CoT_1.json"},
               false);
  ASSERT_EQ(items.size(), 800u);
  const Comparison c = Compare(NumericTask(), items, false, "svamp train");
  EXPECT_EQ(c.paper, 588);
  EXPECT_GE(c.ours, 588);
  // The paper counts three answers correct that are not:
  // #42 asks how many pencils, gold 31 * 6 = 186. The teacher answered the rows, "(31 * 6) / 19" =
  //     9.79; the paper's regex cut that to "(31 * 6)".
  // #644 asks cakes per friend, gold 30 / 2. The teacher gave two quantities, "((29/2) and (30/2))",
  //     which the paper's eval() turns into 15 because Python's `and` returns its last operand.
  // #762 asks David's crunches, gold 62 - 17. "(34 + 40) and (62 - 17)": the same accident.
  EXPECT_EQ(c.only_paper, (std::set<int>{42, 644, 762}));
  // Ours, as in the test split: #5 "(16 * 17) * 4" = 1088 = gold (4 * 17) * 16; #38 "(102 - 22) / 8"
  // = 10 = gold; #601 "(3 + 5) + 2" = 10 = gold; the paper reads only the parenthesised head of each.
  for (const int i : {5, 38, 601}) EXPECT_TRUE(c.only_ours.count(i)) << "svamp train #" << i;
}

TEST_F(RealDataTest, AnliTest) {
  LOAD_OR_SKIP(items, "anli1/anli1_test.json", {"anli1/palm/test_CoT_0.json"}, true);
  ASSERT_EQ(items.size(), 1000u);
  const Comparison c = Compare(NliTaskSpec(), items, true, "anli1 test");
  EXPECT_EQ(c.paper, 656);
  EXPECT_GE(c.ours, 656);
  // Every difference is in our favour: the paper splits on "So the answer is" only, case-sensitively.
  EXPECT_TRUE(c.only_paper.empty());
  // #373 "… was written in 1894, so the answer is entailment.", gold entailment.
  // #559 "Stoops was born in 1960, so the answer is contradiction.", gold contradiction.
  // #692 "… directed by Lee Doo-dong. The answer is contradiction." (no "So"), gold contradiction.
  for (const int i : {373, 559, 692}) EXPECT_TRUE(c.only_ours.count(i)) << "anli1 test #" << i;
}

TEST_F(RealDataTest, AnliValid) {
  LOAD_OR_SKIP(items, "anli1/anli1_valid.json", {"anli1/palm/valid_CoT_0.json"}, true);
  ASSERT_EQ(items.size(), 1000u);
  const Comparison c = Compare(NliTaskSpec(), items, true, "anli1 valid");
  EXPECT_EQ(c.paper, 668);
  EXPECT_GE(c.ours, 668);
  EXPECT_TRUE(c.only_paper.empty());
  // #100 "… October is the tenth month of the year, so the answer is entailment.", gold entailment.
  // #654 "… beating Al-Zawraa 5–3 on penalties … The answer is contradiction.", gold contradiction.
  // #988 "… Fox ended development on the show, so the answer is entailment.", gold entailment.
  for (const int i : {100, 654, 988}) EXPECT_TRUE(c.only_ours.count(i)) << "anli1 valid #" << i;
}

}  // namespace
}  // namespace distill::curator
