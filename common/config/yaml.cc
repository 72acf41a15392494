#include "common/config/yaml.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <system_error>
#include <type_traits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "common/strings/strings.h"
#include "yaml-cpp/yaml.h"

namespace distill::config {
namespace internal {

// The parsed file is copied out of yaml-cpp's tree into this one: it gives every mapping a stable
// identity to hang "was this key read" on, keeps duplicate keys visible, and keeps yaml-cpp (and its
// exceptions) inside Parse().
struct Entry {
  std::string key;
  int line = 1;  // Of the key, 1-based.
  std::unique_ptr<Value> value;
  bool used = false;  // Read by the code, so not an unknown key.
};

struct Value {
  enum class Kind { kNull, kScalar, kList, kMap };
  Kind kind = Kind::kNull;
  int line = 1;
  std::string text;                              // kScalar.
  bool plain = false;                            // kScalar written without quotes or tag.
  std::vector<Entry> entries;                    // kMap, in document order, without duplicates.
  std::vector<std::unique_ptr<Value>> items;     // kList.
  bool opened = false;                           // kMap viewed by a Node: unread keys are unknown.
  std::set<std::string, std::less<>> requested;  // kMap: keys the code asked for, for suggestions.
};

struct Problem {
  int line;
  std::string text;
};

struct State {
  std::string name;
  std::unique_ptr<Value> root;
  std::vector<Problem> problems;
};

}  // namespace internal

namespace {

using strings::Cat;
using strings::ToAbsl;

using internal::Entry;
using internal::Problem;
using internal::State;
using internal::Value;
using Kind = internal::Value::Kind;

// Bounds for what an alias can expand to; a recursive alias (`a: &x [*x]`) hits the depth bound.
constexpr int kMaxDepth = 200;
constexpr size_t kMaxValues = 1'000'000;

std::string Quote(std::string_view text) {
  constexpr size_t kMaxShown = 80;
  if (text.size() > kMaxShown) {
    return Cat("\"", absl::CHexEscape(ToAbsl(text.substr(0, kMaxShown))), "\"...");
  }
  return Cat("\"", absl::CHexEscape(ToAbsl(text)), "\"");
}

std::string JoinPath(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  if (key.empty()) return std::string(path);
  return Cat(path, ".", key);
}

std::string IndexPath(std::string_view path, size_t index) { return Cat(path, "[", index, "]"); }

Problem MakeProblem(const State& state, int line, std::string_view path, std::string_view message) {
  if (path.empty()) return {line, Cat(state.name, ":", line, ": ", message)};
  return {line, Cat(state.name, ":", line, ": ", path, ": ", message)};
}

void Record(State& state, int line, std::string_view path, std::string_view message) {
  state.problems.push_back(MakeProblem(state, line, path, message));
}

std::string Describe(const Value& value) {
  switch (value.kind) {
    case Kind::kNull:
      return "null";
    case Kind::kList:
      return "a list";
    case Kind::kMap:
      return "a mapping";
    case Kind::kScalar:
      break;
  }
  return Quote(value.text);
}

Entry* FindEntry(Value* map, std::string_view key) {
  if (map == nullptr) return nullptr;
  for (Entry& entry : map->entries) {
    if (entry.key == key) return &entry;
  }
  return nullptr;
}

// "unknown key", plus the closest key the code asked for but the file lacks, if it is close enough to
// be a typo.
std::string UnknownKeyMessage(const Value& map, std::string_view key) {
  const size_t limit = std::clamp<size_t>(key.size() / 3, 1, 3);
  std::string_view best;
  size_t best_distance = limit + 1;
  for (const std::string& candidate : map.requested) {
    bool present = std::any_of(map.entries.begin(), map.entries.end(),
                               [&](const Entry& entry) { return entry.key == candidate; });
    if (present) continue;
    size_t distance = strings::EditDistance(key, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  if (best.empty()) return "unknown key";
  return Cat("unknown key (did you mean \"", best, "\"?)");
}

void CollectUnknownKeys(const State& state, const Value& value, const std::string& path,
                        std::vector<Problem>* out) {
  if (value.kind == Kind::kMap) {
    // A mapping no Node viewed was consumed whole (a string map) or rejected with its own problem.
    if (!value.opened) return;
    for (const Entry& entry : value.entries) {
      std::string entry_path = JoinPath(path, entry.key);
      if (entry.used) {
        CollectUnknownKeys(state, *entry.value, entry_path, out);
      } else {
        out->push_back(MakeProblem(state, entry.line, entry_path, UnknownKeyMessage(value, entry.key)));
      }
    }
  } else if (value.kind == Kind::kList) {
    for (size_t i = 0; i < value.items.size(); ++i) {
      CollectUnknownKeys(state, *value.items[i], IndexPath(path, i), out);
    }
  }
}

// Copies a yaml-cpp tree into Values. Problems that do not stop the mapping (duplicate keys,
// non-string keys) are recorded in the State; resource limits fail the parse.
class Builder {
 public:
  explicit Builder(State* state) : state_(state) {}

  absl::StatusOr<std::unique_ptr<Value>> Build(const YAML::Node& node, const std::string& path,
                                               int fallback_line, int depth) {
    int line = LineOf(node, fallback_line);
    if (depth > kMaxDepth) {
      return Fail(line, path, Cat("nested more than ", kMaxDepth, " levels deep (a recursive alias?)"));
    }
    if (++count_ > kMaxValues) {
      return Fail(line, path, Cat("more than ", kMaxValues, " values after expanding aliases"));
    }
    auto value = std::make_unique<Value>();
    value->line = line;
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        // yaml-cpp marks an empty value at the next token; the key's line reads better.
        value->line = fallback_line;
        value->kind = Kind::kNull;
        break;
      case YAML::NodeType::Scalar:
        value->kind = Kind::kScalar;
        value->text = node.Scalar();
        value->plain = node.Tag() == "?";
        break;
      case YAML::NodeType::Sequence: {
        value->kind = Kind::kList;
        size_t index = 0;
        for (const YAML::Node& item : node) {
          auto built = Build(item, IndexPath(path, index++), line, depth + 1);
          if (!built.ok()) return built.status();
          value->items.push_back(*std::move(built));
        }
        break;
      }
      case YAML::NodeType::Map: {
        value->kind = Kind::kMap;
        for (const auto& pair : node) {
          // `pair` is a temporary that the loop keeps alive; `it->first` would dangle.
          const YAML::Node& key = pair.first;
          int key_line = LineOf(key, line);
          if (!key.IsScalar()) {
            Record(*state_, key_line, path,
                   Cat("mapping keys must be strings, got ", key.IsNull()       ? "null"
                                                             : key.IsSequence() ? "a list"
                                                                                : "a mapping"));
            continue;
          }
          std::string key_text = key.Scalar();
          std::string key_path = JoinPath(path, key_text);
          if (const Entry* first = FindEntry(value.get(), key_text)) {
            Record(*state_, key_line, key_path, Cat("duplicate key (first on line ", first->line, ")"));
            continue;
          }
          auto built = Build(pair.second, key_path, key_line, depth + 1);
          if (!built.ok()) return built.status();
          value->entries.push_back(Entry{std::move(key_text), key_line, *std::move(built), false});
        }
        break;
      }
    }
    return value;
  }

 private:
  static int LineOf(const YAML::Node& node, int fallback) {
    const YAML::Mark mark = node.Mark();
    return mark.is_null() || mark.line < 0 ? fallback : mark.line + 1;
  }

  absl::Status Fail(int line, std::string_view path, std::string_view message) const {
    return absl::InvalidArgumentError(MakeProblem(*state_, line, path, message).text);
  }

  State* state_;
  size_t count_ = 0;
};

// Each returns "" on success, else the problem ("expected ..., got ...").

bool IsDecimalInteger(std::string_view text) {
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) text.remove_prefix(1);
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c));
  });
}

// YAML 1.2 core-schema floats, without .inf and .nan: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool IsDecimalNumber(std::string_view text) {
  size_t i = 0;
  auto digits = [&] {
    size_t start = i;
    while (i < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[i]))) ++i;
    return i - start;
  };
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
  size_t integer_digits = digits();
  size_t fraction_digits = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    fraction_digits = digits();
  }
  if (integer_digits == 0 && fraction_digits == 0) return false;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
    if (digits() == 0) return false;
  }
  return i == text.size();
}

std::string QuotedStringProblem(std::string_view expected, const Value& value) {
  return Cat("expected ", expected, ", got the quoted string ", Quote(value.text),
             " (write it without quotes)");
}

template <typename T>
std::string ParseInteger(const Value& value, T* out) {
  if (value.kind != Kind::kScalar) return Cat("expected an integer, got ", Describe(value));
  if (!IsDecimalInteger(value.text)) {
    return Cat("expected an integer, got ", Quote(value.text));
  }
  if (!value.plain) return QuotedStringProblem("an integer", value);
  // Only uint64_t has values beyond int64_t's range.
  std::conditional_t<std::is_same_v<T, uint64_t>, uint64_t, int64_t> parsed = 0;
  if (!absl::SimpleAtoi(value.text, &parsed) || !std::in_range<T>(parsed)) {
    return Cat("expected an integer in [", std::numeric_limits<T>::min(), ", ", std::numeric_limits<T>::max(),
               "], got ", value.text);
  }
  *out = static_cast<T>(parsed);
  return "";
}

std::string ParseValue(const Value& value, int* out) { return ParseInteger(value, out); }
std::string ParseValue(const Value& value, int64_t* out) { return ParseInteger(value, out); }
std::string ParseValue(const Value& value, uint32_t* out) { return ParseInteger(value, out); }
std::string ParseValue(const Value& value, uint64_t* out) { return ParseInteger(value, out); }

std::string ParseValue(const Value& value, double* out) {
  if (value.kind != Kind::kScalar) return Cat("expected a number, got ", Describe(value));
  if (!IsDecimalNumber(value.text)) return Cat("expected a number, got ", Quote(value.text));
  if (!value.plain) return QuotedStringProblem("a number", value);
  std::string_view text = value.text;
  if (text[0] == '+') text.remove_prefix(1);
  double parsed = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), parsed);
  if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(parsed)) {
    return Cat("expected a number in the range of a double, got ", value.text);
  }
  *out = parsed;
  return "";
}

std::string ParseValue(const Value& value, float* out) {
  double parsed = 0;
  std::string problem = ParseValue(value, &parsed);
  if (!problem.empty()) return problem;
  if (std::abs(parsed) > std::numeric_limits<float>::max()) {
    return Cat("expected a number in the range of a float, got ", value.text);
  }
  *out = static_cast<float>(parsed);
  return "";
}

std::string ParseValue(const Value& value, bool* out) {
  if (value.kind != Kind::kScalar) return Cat("expected true or false, got ", Describe(value));
  const std::string& text = value.text;
  bool is_true = text == "true" || text == "True" || text == "TRUE";
  bool is_false = text == "false" || text == "False" || text == "FALSE";
  if (!is_true && !is_false) return Cat("expected true or false, got ", Quote(text));
  if (!value.plain) return QuotedStringProblem("true or false", value);
  *out = is_true;
  return "";
}

std::string ParseValue(const Value& value, std::string* out) {
  if (value.kind != Kind::kScalar) return Cat("expected a string, got ", Describe(value));
  *out = value.text;
  return "";
}

std::string ParseValue(const Value& value, absl::Duration* out) {
  constexpr std::string_view kExpected = "expected a duration such as \"30s\" or \"250ms\", got ";
  if (value.kind != Kind::kScalar) return Cat(kExpected, Describe(value));
  absl::Duration parsed;
  if (!absl::ParseDuration(value.text, &parsed)) return Cat(kExpected, Quote(value.text));
  *out = parsed;
  return "";
}

std::string ParseValue(const Value& value, HostPort* out) {
  if (value.kind != Kind::kScalar) return Cat("expected host:port, got ", Describe(value));
  absl::StatusOr<HostPort> parsed = ParseHostPort(value.text);
  if (!parsed.ok()) return std::string(parsed.status().message());
  *out = *std::move(parsed);
  return "";
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Document

Document::Document(std::shared_ptr<internal::State> state) : state_(std::move(state)) {}

absl::StatusOr<Document> Document::LoadFile(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    return absl::ErrnoToStatus(errno, Cat("cannot open config file ", path));
  }
  std::string text;
  char buffer[64 * 1024];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) text.append(buffer, n);
  int read_errno = std::ferror(file) ? errno : 0;
  std::fclose(file);
  if (read_errno != 0) {
    return absl::ErrnoToStatus(read_errno, Cat("cannot read config file ", path));
  }
  return Parse(text, path);
}

absl::StatusOr<Document> Document::Parse(std::string_view text, std::string_view name) {
  auto state = std::make_shared<internal::State>();
  state->name = std::string(name);

  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) return absl::InvalidArgumentError(Cat(name, ": invalid YAML: ", e.msg));
    return absl::InvalidArgumentError(
        Cat(name, ":", e.mark.line + 1, ":", e.mark.column + 1, ": invalid YAML: ", e.msg));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(Cat(name, ": invalid YAML: ", e.what()));
  }
  // "a: 1\n---\n" has a trailing empty document; only documents with content count.
  std::erase_if(documents, [](const YAML::Node& d) { return d.IsNull(); });
  if (documents.size() > 1) {
    return absl::InvalidArgumentError(Cat(name, ":", documents[1].Mark().line + 1,
                                          ": expected one YAML document, found ", documents.size()));
  }

  if (documents.empty()) {
    state->root = std::make_unique<Value>();
    state->root->kind = Kind::kMap;
  } else {
    try {
      Builder builder(state.get());
      absl::StatusOr<std::unique_ptr<Value>> root = builder.Build(documents[0], "", 1, 0);
      if (!root.ok()) return root.status();
      state->root = *std::move(root);
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(Cat(name, ": cannot read YAML: ", e.what()));
    }
    if (state->root->kind != Kind::kMap) {
      return absl::InvalidArgumentError(Cat(name, ":", state->root->line,
                                            ": expected a mapping (key: value) at the top level, got ",
                                            Describe(*state->root)));
    }
  }
  state->root->opened = true;
  return Document(std::move(state));
}

Node Document::Root() { return Node(state_, state_->root.get(), "", state_->root->line); }

absl::Status Document::Finish() const {
  std::vector<Problem> problems = state_->problems;
  CollectUnknownKeys(*state_, *state_->root, "", &problems);
  if (problems.empty()) return absl::OkStatus();
  std::stable_sort(problems.begin(), problems.end(),
                   [](const Problem& a, const Problem& b) { return a.line < b.line; });
  return absl::InvalidArgumentError(
      absl::StrJoin(problems, "\n", [](std::string* out, const Problem& p) { out->append(p.text); }));
}

const std::string& Document::name() const { return state_->name; }

// ---------------------------------------------------------------------------------------------------
// Node

Node::Node(std::shared_ptr<internal::State> state, internal::Value* map, std::string path, int line)
    : state_(std::move(state)), map_(map), path_(std::move(path)), line_(line) {}

internal::Value* Node::Use(std::string_view key, int* line) {
  *line = line_;
  if (map_ == nullptr) return nullptr;
  map_->requested.emplace(key);
  Entry* entry = FindEntry(map_, key);
  if (entry == nullptr) return nullptr;
  entry->used = true;
  *line = entry->line;
  return entry->value.get();
}

template <typename T>
void Node::ReadScalar(std::string_view key, T* out) {
  int line;
  const Value* value = Use(key, &line);
  if (value == nullptr) return;
  std::string problem = ParseValue(*value, out);
  if (!problem.empty()) Record(*state_, line, Path(key), problem);
}

void Node::Read(std::string_view key, std::string* out) { ReadScalar(key, out); }
void Node::Read(std::string_view key, bool* out) { ReadScalar(key, out); }
void Node::Read(std::string_view key, int* out) { ReadScalar(key, out); }
void Node::Read(std::string_view key, int64_t* out) { ReadScalar(key, out); }
void Node::Read(std::string_view key, uint32_t* out) { ReadScalar(key, out); }
void Node::Read(std::string_view key, uint64_t* out) { ReadScalar(key, out); }
void Node::Read(std::string_view key, double* out) { ReadScalar(key, out); }
void Node::Read(std::string_view key, float* out) { ReadScalar(key, out); }
void Node::Read(std::string_view key, absl::Duration* out) { ReadScalar(key, out); }
void Node::Read(std::string_view key, HostPort* out) { ReadScalar(key, out); }

template <typename T>
void Node::ReadScalarList(std::string_view key, std::vector<T>* out, std::string_view expected) {
  int line;
  const Value* value = Use(key, &line);
  if (value == nullptr) return;
  if (value->kind == Kind::kNull) {
    out->clear();
    return;
  }
  if (value->kind != Kind::kList) {
    Record(*state_, line, Path(key), Cat("expected ", expected, ", got ", Describe(*value)));
    return;
  }
  std::vector<T> result;
  bool ok = true;
  for (size_t i = 0; i < value->items.size(); ++i) {
    const Value& item = *value->items[i];
    T parsed{};
    std::string problem = ParseValue(item, &parsed);
    if (!problem.empty()) {
      Record(*state_, item.line, IndexPath(Path(key), i), problem);
      ok = false;
      continue;
    }
    result.push_back(parsed);
  }
  if (ok) *out = std::move(result);
}

void Node::Read(std::string_view key, std::vector<std::string>* out) {
  ReadScalarList(key, out, "a list of strings");
}
void Node::Read(std::string_view key, std::vector<bool>* out) { ReadScalarList(key, out); }
void Node::Read(std::string_view key, std::vector<int>* out) { ReadScalarList(key, out); }
void Node::Read(std::string_view key, std::vector<int64_t>* out) { ReadScalarList(key, out); }
void Node::Read(std::string_view key, std::vector<uint32_t>* out) { ReadScalarList(key, out); }
void Node::Read(std::string_view key, std::vector<uint64_t>* out) { ReadScalarList(key, out); }
void Node::Read(std::string_view key, std::vector<double>* out) { ReadScalarList(key, out); }
void Node::Read(std::string_view key, std::vector<float>* out) { ReadScalarList(key, out); }

void Node::Read(std::string_view key, std::map<std::string, std::string>* out) {
  int line;
  const Value* value = Use(key, &line);
  if (value == nullptr) return;
  if (value->kind == Kind::kNull) {
    out->clear();
    return;
  }
  if (value->kind != Kind::kMap) {
    Record(*state_, line, Path(key), Cat("expected a mapping of strings, got ", Describe(*value)));
    return;
  }
  std::map<std::string, std::string> result;
  bool ok = true;
  for (const Entry& entry : value->entries) {
    if (entry.value->kind != Kind::kScalar) {
      Record(*state_, entry.line, JoinPath(Path(key), entry.key),
             Cat("expected a string, got ", Describe(*entry.value)));
      ok = false;
      continue;
    }
    result.emplace(entry.key, entry.value->text);
  }
  if (ok) *out = std::move(result);
}

std::optional<size_t> Node::ReadChoice(std::string_view key, const std::vector<std::string_view>& names) {
  int line;
  const Value* value = Use(key, &line);
  if (value == nullptr) return std::nullopt;
  if (value->kind == Kind::kScalar) {
    auto it = std::find(names.begin(), names.end(), value->text);
    if (it != names.end()) return static_cast<size_t>(it - names.begin());
  }
  Record(*state_, line, Path(key),
         Cat("expected one of: ",
             absl::StrJoin(names, ", ", [](std::string* out, std::string_view name) { out->append(name); }),
             "; got ", Describe(*value)));
  return std::nullopt;
}

void Node::ReadCustom(std::string_view key, std::string_view expected,
                      const std::function<std::string(std::string_view text)>& parse) {
  int line;
  const Value* value = Use(key, &line);
  if (value == nullptr) return;
  std::string problem = value->kind == Kind::kScalar ? parse(value->text)
                                                     : Cat("expected ", expected, ", got ", Describe(*value));
  if (!problem.empty()) Record(*state_, line, Path(key), problem);
}

void Node::ReadCustomList(std::string_view key, std::string_view expected,
                          const std::function<std::string(size_t index, std::string_view text)>& parse) {
  int line;
  const Value* value = Use(key, &line);
  if (value == nullptr || value->kind == Kind::kNull) return;
  if (value->kind != Kind::kList) {
    Record(*state_, line, Path(key), Cat("expected a list, got ", Describe(*value)));
    return;
  }
  for (size_t i = 0; i < value->items.size(); ++i) {
    const Value& item = *value->items[i];
    std::string problem = item.kind == Kind::kScalar ? parse(i, item.text)
                                                     : Cat("expected ", expected, ", got ", Describe(item));
    if (!problem.empty()) Record(*state_, item.line, IndexPath(Path(key), i), problem);
  }
}

bool Node::Require(std::string_view key) {
  if (Has(key)) return true;
  Record(*state_, line_, Path(key), "is required");
  return false;
}

Node Node::Child(std::string_view key) {
  int line;
  Value* value = Use(key, &line);
  if (value == nullptr || value->kind == Kind::kNull) return Node(state_, nullptr, Path(key), line);
  if (value->kind != Kind::kMap) {
    Record(*state_, line, Path(key), Cat("expected a mapping, got ", Describe(*value)));
    return Node(state_, nullptr, Path(key), line);
  }
  value->opened = true;
  return Node(state_, value, Path(key), line);
}

std::vector<Node> Node::Children(std::string_view key) {
  int line;
  Value* value = Use(key, &line);
  std::vector<Node> children;
  if (value == nullptr || value->kind == Kind::kNull) return children;
  if (value->kind != Kind::kList) {
    Record(*state_, line, Path(key), Cat("expected a list of mappings, got ", Describe(*value)));
    return children;
  }
  for (size_t i = 0; i < value->items.size(); ++i) {
    Value& item = *value->items[i];
    std::string item_path = IndexPath(Path(key), i);
    if (item.kind != Kind::kMap) {
      Record(*state_, item.line, item_path, Cat("expected a mapping, got ", Describe(item)));
      continue;
    }
    item.opened = true;
    children.push_back(Node(state_, &item, std::move(item_path), item.line));
  }
  return children;
}

std::vector<std::string> Node::Keys() {
  std::vector<std::string> keys;
  if (map_ == nullptr) return keys;
  for (Entry& entry : map_->entries) {
    entry.used = true;
    keys.push_back(entry.key);
  }
  return keys;
}

bool Node::Has(std::string_view key) const {
  if (map_ == nullptr) return false;
  map_->requested.emplace(key);
  return FindEntry(map_, key) != nullptr;
}

Node::Shape Node::ShapeOf(std::string_view key) const {
  if (map_ == nullptr) return Shape::kAbsent;
  map_->requested.emplace(key);
  const Entry* entry = FindEntry(map_, key);
  if (entry == nullptr) return Shape::kAbsent;
  switch (entry->value->kind) {
    case Kind::kNull:
      return Shape::kNull;
    case Kind::kScalar:
      return Shape::kScalar;
    case Kind::kList:
      return Shape::kList;
    case Kind::kMap:
      break;
  }
  return Shape::kMap;
}

void Node::MarkKnown(std::string_view key) {
  int line;
  Use(key, &line);
}

void Node::Check(bool ok, std::string_view key, std::string_view message) {
  if (!ok) Error(key, message);
}

void Node::Error(std::string_view key, std::string_view message) {
  const Entry* entry = key.empty() ? nullptr : FindEntry(map_, key);
  Record(*state_, entry != nullptr ? entry->line : line_, Path(key), message);
}

std::string Node::Path(std::string_view key) const { return JoinPath(path_, key); }

}  // namespace distill::config
