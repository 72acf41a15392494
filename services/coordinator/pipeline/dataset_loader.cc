#include "services/coordinator/pipeline/dataset_loader.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/artifacts/artifacts.h"
#include "common/dataset/csv.h"
#include "common/dataset/example_json.h"
#include "common/status/macros.h"
#include "common/strings/strings.h"
#include "nlohmann/json.hpp"
#include "services/teacher_gateway/synthetic/arith_problems.h"

namespace distill::coordinator {
namespace {

using nlohmann::json;

constexpr std::string_view kSyntheticArith = "synthetic:arith";

// One row of a file: column name → value (strings; JSON numbers as their text; nested values as JSON).
struct Row {
  int line = 0;
  std::map<std::string, json> values;
};

absl::StatusOr<std::string> ReadFile(const std::string& path, std::string_view field) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(strings::Cat(field, ": cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

v1::DatasetFormat FormatOf(const v1::DatasetSource& source, const std::string& path) {
  if (source.format() != v1::DATASET_FORMAT_UNSPECIFIED) return source.format();
  if (path.size() >= 4 && path.compare(path.size() - 4, 4, ".csv") == 0) return v1::DATASET_FORMAT_CSV;
  return v1::DATASET_FORMAT_JSONL;
}

absl::StatusOr<std::vector<Row>> ReadRows(const v1::DatasetSource& source, const std::string& path,
                                          std::string_view field) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, field));
  std::vector<Row> rows;
  if (FormatOf(source, path) == v1::DATASET_FORMAT_CSV) {
    ASSIGN_OR_RETURN(std::vector<dataset::CsvRecord> records, dataset::ParseCsv(text, path));
    if (records.empty()) return rows;
    const std::vector<std::string>& header = records[0].fields;
    for (size_t r = 1; r < records.size(); ++r) {
      const dataset::CsvRecord& record = records[r];
      if (record.fields.size() != header.size()) {
        return absl::InvalidArgumentError(strings::Cat(path, ":", record.line, ": ", record.fields.size(),
                                                       " fields, but the header has ", header.size()));
      }
      Row row{.line = record.line, .values = {}};
      for (size_t c = 0; c < header.size(); ++c) row.values[header[c]] = record.fields[c];
      rows.push_back(std::move(row));
    }
    return rows;
  }
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    json object = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (object.is_discarded()) return absl::InvalidArgumentError(strings::Cat(path, ":", line_number, ": malformed JSON"));
    if (!object.is_object()) {
      return absl::InvalidArgumentError(strings::Cat(path, ":", line_number, ": expected a JSON object"));
    }
    Row row{.line = line_number, .values = {}};
    for (auto it = object.begin(); it != object.end(); ++it) row.values[it.key()] = it.value();
    rows.push_back(std::move(row));
  }
  return rows;
}

// A cell as text: strings as they are, numbers and booleans as JSON writes them.
std::string CellText(const json& value) { return value.is_string() ? value.get<std::string>() : value.dump(); }

// Replaces "{column}" by the row's value; "{{" and "}}" are literal braces.
absl::StatusOr<std::string> RenderTemplate(const std::string& tmpl, const Row& row, const std::string& path) {
  std::string out;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    const char c = tmpl[i];
    if ((c == '{' || c == '}') && i + 1 < tmpl.size() && tmpl[i + 1] == c) {
      out.push_back(c);
      ++i;
    } else if (c == '{') {
      const size_t close = tmpl.find('}', i);
      if (close == std::string::npos) {
        return absl::InvalidArgumentError("dataset.input_template: unclosed \"{\" (write \"{{\" for a literal brace)");
      }
      const std::string name = tmpl.substr(i + 1, close - i - 1);
      auto it = row.values.find(name);
      if (it == row.values.end() || it->second.is_null()) {
        return absl::InvalidArgumentError(
            strings::Cat(path, ":", row.line, ": dataset.input_template: no column \"", name, "\""));
      }
      out += CellText(it->second);
      i = close;
    } else if (c == '}') {
      return absl::InvalidArgumentError("dataset.input_template: lone \"}\" (write \"}}\" for a literal brace)");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

absl::StatusOr<v1::Example> ExampleFromRow(const v1::DatasetSource& source, const Row& row, const std::string& path,
                                           bool csv) {
  const v1::DatasetColumns& columns = source.columns();
  json object = json::object();
  if (!columns.id().empty()) {
    auto it = row.values.find(columns.id());
    if (it == row.values.end() || it->second.is_null()) {
      return absl::InvalidArgumentError(
          strings::Cat(path, ":", row.line, ": no id column \"", columns.id(), "\" (dataset.columns.id)"));
    }
    object["id"] = CellText(it->second);
  }
  if (!source.input_template().empty()) {
    ASSIGN_OR_RETURN(std::string input, RenderTemplate(source.input_template(), row, path));
    object["input"] = input;
  } else {
    const std::string input_column = columns.input().empty() ? "input" : columns.input();
    auto it = row.values.find(input_column);
    if (it == row.values.end() || !it->second.is_string()) {
      return absl::InvalidArgumentError(strings::Cat(path, ":", row.line, ": input column \"", input_column,
                                                     "\" missing or not a string (dataset.columns.input)"));
    }
    object["input"] = it->second;
  }
  if (!columns.gold().empty()) {
    auto it = row.values.find(columns.gold());
    if (it == row.values.end()) {
      return absl::InvalidArgumentError(
          strings::Cat(path, ":", row.line, ": no gold column \"", columns.gold(), "\" (dataset.columns.gold)"));
    }
    // An empty CSV cell means "no gold" for that row.
    if (!(csv && CellText(it->second).empty())) object["gold"] = it->second;
  }
  if (!columns.choices().empty()) {
    auto it = row.values.find(columns.choices());
    if (it == row.values.end()) {
      return absl::InvalidArgumentError(strings::Cat(path, ":", row.line, ": no choices column \"",
                                                     columns.choices(), "\" (dataset.columns.choices)"));
    }
    if (csv) {
      // An empty cell means "no choices" for that row (as for gold), not one empty choice.
      json choices = json::array();
      const std::string cell = CellText(it->second);
      if (!cell.empty()) {
        for (absl::string_view choice : absl::StrSplit(cell, '|')) choices.push_back(std::string(choice));
      }
      object["choices"] = choices;
    } else {
      object["choices"] = it->second;
    }
  }
  absl::StatusOr<v1::Example> example = dataset::ExampleFromJson(object, std::to_string(row.line));
  if (!example.ok()) return absl::InvalidArgumentError(strings::Cat(path, ":", row.line, ": ", example.status().message()));
  if (example->input().find_first_not_of(" \t\r\n") == std::string::npos) {
    return absl::InvalidArgumentError(strings::Cat(path, ":", row.line, ": input: empty"));
  }
  return example;
}

absl::StatusOr<std::vector<v1::Example>> ReadExamples(const v1::DatasetSource& source, const std::string& uri,
                                                      const std::string& artifact_root, std::string_view field,
                                                      int64_t limit, int64_t* rows_read) {
  ASSIGN_OR_RETURN(std::string path, artifacts::ResolveUri(artifact_root, uri, field));
  ASSIGN_OR_RETURN(std::vector<Row> rows, ReadRows(source, path, field));
  const bool csv = FormatOf(source, path) == v1::DATASET_FORMAT_CSV;
  std::vector<v1::Example> examples;
  std::map<std::string, int> first_line;
  for (const Row& row : rows) {
    if (limit > 0 && static_cast<int64_t>(examples.size()) >= limit) break;
    ++*rows_read;
    ASSIGN_OR_RETURN(v1::Example example, ExampleFromRow(source, row, path, csv));
    auto [it, inserted] = first_line.emplace(example.id(), row.line);
    if (!inserted) {
      return absl::InvalidArgumentError(strings::Cat(path, ":", row.line, ": id: \"", example.id(),
                                                     "\" repeats the id of line ", it->second));
    }
    examples.push_back(std::move(example));
  }
  return examples;
}

// "synthetic:arith?count=2000&seed=1&min_ops=1&max_ops=2".
absl::StatusOr<std::vector<v1::Example>> SyntheticExamples(const std::string& uri, int64_t limit) {
  absl::string_view query = absl::string_view(uri).substr(kSyntheticArith.size());
  int64_t count = 0, seed = 1, min_ops = 1, max_ops = 2;
  if (!query.empty()) {
    if (query[0] != '?') return absl::InvalidArgumentError(strings::Cat("dataset.uri: expected \"?\" after ", kSyntheticArith));
    query.remove_prefix(1);
    for (absl::string_view pair : absl::StrSplit(query, '&')) {
      std::vector<absl::string_view> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
      int64_t value = 0;
      if (kv.size() != 2 || !absl::SimpleAtoi(std::string(kv[1]), &value) || value < 0) {
        return absl::InvalidArgumentError(strings::Cat("dataset.uri: \"", std::string(pair), "\": expected name=non-negative integer"));
      }
      if (kv[0] == "count") count = value;
      else if (kv[0] == "seed") seed = value;
      else if (kv[0] == "min_ops") min_ops = value;
      else if (kv[0] == "max_ops") max_ops = value;
      else return absl::InvalidArgumentError(strings::Cat("dataset.uri: unknown parameter \"", std::string(kv[0]), "\" (count, seed, min_ops, max_ops)"));
    }
  }
  if (count <= 0 || count > 10'000'000) {
    return absl::InvalidArgumentError("dataset.uri: count: must be in [1, 10000000]");
  }
  if (limit > 0) count = std::min(count, limit);
  std::vector<v1::Example> examples;
  for (const teacher::ArithProblem& problem : teacher::GenerateArithProblems(
           static_cast<int>(count), static_cast<uint64_t>(seed), static_cast<int>(min_ops), static_cast<int>(max_ops))) {
    v1::Example example;
    example.set_id(problem.id);
    example.set_input(problem.question);
    example.set_gold(std::to_string(problem.answer));
    examples.push_back(std::move(example));
  }
  return examples;
}

// Moves `share` of `from` (at least one when share > 0 and there are two or more) to `to`, chosen by a
// seeded Fisher-Yates shuffle written out here (std::shuffle's order differs between standard libraries);
// both keep their original order.
void SplitOff(std::vector<v1::Example>* from, std::vector<v1::Example>* to, double share, uint64_t seed) {
  const size_t n = from->size();
  if (share <= 0 || n < 2) return;
  size_t take = static_cast<size_t>(std::llround(share * static_cast<double>(n)));
  take = std::clamp<size_t>(take, 1, n - 1);
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  for (size_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng() % (i + 1)]);
  std::vector<bool> chosen(n, false);
  for (size_t i = 0; i < take; ++i) chosen[order[i]] = true;
  std::vector<v1::Example> kept;
  for (size_t i = 0; i < n; ++i) ((chosen[i]) ? to : &kept)->push_back(std::move((*from)[i]));
  *from = std::move(kept);
}

}  // namespace

absl::StatusOr<SplitDataset> LoadDataset(const v1::DatasetSource& source, const std::string& artifact_root) {
  SplitDataset out;
  if (source.uri().rfind(kSyntheticArith, 0) == 0) {
    ASSIGN_OR_RETURN(out.train, SyntheticExamples(source.uri(), source.max_examples()));
    out.rows_read = static_cast<int64_t>(out.train.size());
  } else {
    ASSIGN_OR_RETURN(out.train, ReadExamples(source, source.uri(), artifact_root, "dataset.uri",
                                             source.max_examples(), &out.rows_read));
  }
  const v1::DatasetSplit& split = source.split();
  uint64_t seed = 0;
  if (split.has_given()) {
    ASSIGN_OR_RETURN(out.test, ReadExamples(source, split.given().test_uri(), artifact_root,
                                            "dataset.split.given.test_uri", 0, &out.rows_read));
  } else if (split.has_random()) {
    seed = split.random().seed();
    if (out.train.size() < 2) {
      return absl::InvalidArgumentError(strings::Cat("dataset: ", out.train.size(),
                                                     " example(s) cannot be split into train and test"));
    }
    SplitOff(&out.train, &out.test, split.random().test_fraction(), seed);
  } else {
    return absl::InvalidArgumentError("dataset.split: random or given is required");
  }
  // A different stream of the same seed, so validation does not mirror the test draw.
  SplitOff(&out.train, &out.validation, split.validation_fraction(), seed ^ 0x9e3779b97f4a7c15ULL);
  if (out.train.empty()) return absl::InvalidArgumentError("dataset: no training examples");
  if (out.test.empty()) return absl::InvalidArgumentError("dataset: no test examples");
  return out;
}

}  // namespace distill::coordinator
