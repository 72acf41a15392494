#ifndef DISTILL_COMMON_CONFIG_YAML_H_
#define DISTILL_COMMON_CONFIG_YAML_H_

// Strict mapping of YAML files (service configs, job files) into plain structs.
//
// Loading happens in three steps: parse the file, map it field by field into a struct whose members
// hold the defaults, validate; every problem found on the way is collected and reported together,
// each with file, line and key path:
//
//   job.yaml:7: training.learnig_rate: unknown key (did you mean "learning_rate"?)
//   job.yaml:12: training.batch_size: expected an integer, got "lots"
//   job.yaml:14: training.warmup: must be <= max_steps, got 900
//
// Typical use:
//
//   absl::StatusOr<JobConfig> LoadJobConfig(const std::string& path) {
//     ASSIGN_OR_RETURN(config::Document doc, config::Document::LoadFile(path));
//     JobConfig job;                          // members hold the defaults
//     config::Node root = doc.Root();
//     root.ReadRequired("model", &job.model);
//     config::Node training = root.Child("training");
//     training.Read("learning_rate", &job.learning_rate);
//     training.Check(job.learning_rate > 0, "learning_rate",
//                    absl::StrCat("must be > 0, got ", job.learning_rate));
//     for (config::Node backend : root.Children("backends")) { ... }
//     RETURN_IF_ERROR(doc.Finish());          // unknown keys + everything recorded above
//     return job;
//   }
//
// Scalar typing is strict but YAML-friendly: numbers and booleans must be written plain (`port: 80`,
// not `port: "80"`); booleans are only true/false (any capitalisation YAML 1.2 allows: true, True,
// TRUE), never yes/no/on/off; any scalar, plain or quoted, can be read as a string (`version: 1.10`
// reads as "1.10"). An explicit null (`key:`, `key: ~`, `key: null`) is an error for scalars and
// reads as empty for mappings, lists and string maps.
//
// Limits: anchors and aliases work, but problems inside an aliased value are reported at the line of
// the anchor. yaml-cpp 0.7 does not implement merge keys (`<<: *base`); they read as an unknown key
// "<<". Duplicate keys in a mapping are reported; the first occurrence is the one read.

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config/host_port.h"

namespace distill::config {

namespace internal {
struct State;
struct Value;
}  // namespace internal

class Node;

// One parsed YAML file. Collects the problems found while mapping it. Not thread-safe: a Document and
// the Nodes obtained from it must be used from one thread at a time. Nodes share ownership of the
// parsed tree, so they stay valid after the Document is moved or destroyed.
class Document {
 public:
  // Reads and parses `path`; `path` is the file name used in messages. NOT_FOUND if the file does not
  // exist, PERMISSION_DENIED if it cannot be opened for that reason, INVALID_ARGUMENT with
  // "path:line:col:" for YAML syntax errors, a top level that is not a mapping, or several documents.
  static absl::StatusOr<Document> LoadFile(const std::string& path);

  // Parses `text`; `name` stands for the file in messages. An empty text (or one holding only
  // comments) is an empty mapping, so every field keeps its default.
  static absl::StatusOr<Document> Parse(std::string_view text, std::string_view name);

  Document(Document&&) = default;
  Document& operator=(Document&&) = default;

  // The top-level mapping, with the empty key path.
  Node Root();

  // Adds one "unknown key" problem for every key that was never read in every mapping that was opened
  // as a Node (keys under an unknown key are not reported again), then returns OK if no problem was
  // recorded, else one INVALID_ARGUMENT whose message lists every problem, one per line, as
  // "name:line: key.path: message", sorted by line. May be called more than once.
  absl::Status Finish() const;

  // The file name used in messages.
  const std::string& name() const;

 private:
  explicit Document(std::shared_ptr<internal::State> state);
  std::shared_ptr<internal::State> state_;
};

// A view of one mapping in a Document, with its key path ("training", "backends[1]"). A Node for an
// absent key is empty: it reads nothing and Has() is false for every key, but problems recorded
// through it (e.g. "is required") still name its path. Cheap to copy. Not thread-safe.
//
// Every Read leaves *out unchanged when the key is absent or its value is malformed, so *out keeps
// its default; a malformed value records "name:line: path.key: expected ..., got ...". Reading a key
// marks it known for Finish(), whether or not its value was well-formed.
class Node {
 public:
  // Scalars.
  void Read(std::string_view key, std::string* out);
  void Read(std::string_view key, bool* out);
  void Read(std::string_view key, int* out);
  void Read(std::string_view key, int64_t* out);
  void Read(std::string_view key, uint32_t* out);
  void Read(std::string_view key, uint64_t* out);
  void Read(std::string_view key, double* out);
  // A number as for double, rounded to the nearest float; outside a float's range is a problem.
  void Read(std::string_view key, float* out);
  // A duration as absl::ParseDuration writes it: "30s", "250ms", "1m30s", "1.5h", "0", "inf". A bare
  // number other than 0 is rejected (its unit would be a guess). Negative durations are accepted;
  // Check() them where they make no sense.
  void Read(std::string_view key, absl::Duration* out);
  // "host:port", "[v6]:port", see ParseHostPort().
  void Read(std::string_view key, HostPort* out);
  // A list of scalars (`[a, b]` or a block list); replaces *out entirely.
  void Read(std::string_view key, std::vector<std::string>* out);
  // Lists of scalars typed strictly, each element as the scalar Read of its type; replace *out entirely.
  // A malformed element records "path.key[i]: expected ..." at its own line and leaves *out unchanged.
  void Read(std::string_view key, std::vector<bool>* out);
  void Read(std::string_view key, std::vector<int>* out);
  void Read(std::string_view key, std::vector<int64_t>* out);
  void Read(std::string_view key, std::vector<uint32_t>* out);
  void Read(std::string_view key, std::vector<uint64_t>* out);
  void Read(std::string_view key, std::vector<double>* out);
  void Read(std::string_view key, std::vector<float>* out);
  // A mapping of scalars (e.g. labels or HTTP headers); replaces *out entirely.
  void Read(std::string_view key, std::map<std::string, std::string>* out);

  // A string that must be one of `choices`, stored as the matching value:
  //   node.ReadEnum("strategy", &cfg.strategy,
  //                 {{"few_shot_cot", Strategy::kFewShot}, {"zero_shot", Strategy::kZeroShot}});
  // Anything else records `expected one of: few_shot_cot, zero_shot; got "fewshot"`.
  template <typename E>
  void ReadEnum(std::string_view key, E* out,
                std::initializer_list<std::pair<std::string_view, std::type_identity_t<E>>> choices) {
    std::vector<std::string_view> names;
    names.reserve(choices.size());
    for (const auto& choice : choices) names.push_back(choice.first);
    if (std::optional<size_t> index = ReadChoice(key, names)) {
      *out = (choices.begin() + *index)->second;
    }
  }

  // A scalar of a type known only at run time, such as a protobuf enum. `parse` gets the scalar's text
  // (plain or quoted) and returns "" if it accepted it (storing it wherever it likes), else the problem,
  // e.g. `expected one of: a, b; got "c"`, recorded at the key's line and path. A null, list or mapping
  // records "expected <expected>, got a list" without calling `parse`. Nothing happens if `key` is absent.
  void ReadCustom(std::string_view key, std::string_view expected,
                  const std::function<std::string(std::string_view text)>& parse);

  // ReadCustom for every element of a list of scalars, `index` being the element's position. A problem is
  // recorded at the element's line with the path "key[index]"; the other elements are still parsed. A null
  // value is an empty list (`parse` is not called); any other non-list records "expected a list, got ...".
  void ReadCustomList(std::string_view key, std::string_view expected,
                      const std::function<std::string(size_t index, std::string_view text)>& parse);

  // Records "is required" if `key` is absent; returns whether it is present.
  bool Require(std::string_view key);

  // Require(key), then Read(key, out). Works with every Read overload.
  template <typename T>
  void ReadRequired(std::string_view key, T* out) {
    if (Require(key)) Read(key, out);
  }

  // The mapping at `key`. Absent or null -> an empty Node; any other non-mapping value records
  // "expected a mapping, got ..." and returns an empty Node.
  Node Child(std::string_view key);

  // The list of mappings at `key`, one Node per element with paths "key[0]", "key[1]", ... Absent or
  // null -> no elements; a non-list value or a non-mapping element records a problem.
  std::vector<Node> Children(std::string_view key);

  // This mapping's keys in document order, for mappings keyed by user-chosen names
  // (`backends: {openai: {...}}` -> Child("backends").Keys() then Child(name) for each). Marks every
  // key known.
  std::vector<std::string> Keys();

  // Whether `key` is present (even with a null value). Does not mark it known.
  bool Has(std::string_view key) const;

  // The form of `key`'s value, for readers that accept several (a string or a mapping, say). Does not
  // mark the key known.
  enum class Shape { kAbsent, kNull, kScalar, kList, kMap };
  Shape ShapeOf(std::string_view key) const;

  // Marks `key` known for Finish() without reading it: for a key whose value is rejected whole with
  // Error(), which is then its only problem instead of coming with "unknown key".
  void MarkKnown(std::string_view key);

  // Records "name:line: path.key: message" unless `ok`. The line is the key's if present, else the
  // mapping's. An empty `key` means the mapping itself (for problems spanning several keys).
  void Check(bool ok, std::string_view key, std::string_view message);
  void Error(std::string_view key, std::string_view message);

  // The key path of `key` in this mapping ("training.learning_rate"); of the mapping itself if empty.
  std::string Path(std::string_view key) const;

  // Whether this Node views a mapping present in the file (false for absent/null/malformed values).
  bool present() const { return map_ != nullptr; }

 private:
  friend class Document;
  Node(std::shared_ptr<internal::State> state, internal::Value* map, std::string path, int line);

  // Marks `key` known and returns its value, or null if absent; *line is the key's line if present,
  // else the mapping's.
  internal::Value* Use(std::string_view key, int* line);
  template <typename T>
  void ReadScalar(std::string_view key, T* out);  // Defined and used only in yaml.cc.
  template <typename T>
  void ReadScalarList(std::string_view key, std::vector<T>* out,
                      std::string_view expected = "a list");  // Likewise.
  std::optional<size_t> ReadChoice(std::string_view key, const std::vector<std::string_view>& names);

  std::shared_ptr<internal::State> state_;
  internal::Value* map_;  // Owned by *state_; null when the mapping is absent.
  std::string path_;
  int line_;  // Of the mapping, or of the nearest present ancestor when absent.
};

}  // namespace distill::config

#endif  // DISTILL_COMMON_CONFIG_YAML_H_
