#ifndef DISTILL_COMMON_CONFIG_PROTO_YAML_H_
#define DISTILL_COMMON_CONFIG_PROTO_YAML_H_

// Maps a YAML mapping onto a protobuf message through its descriptor, so that a file format defined as
// "the keys are the message's field names" (the job file and distill.v1.JobSpec) follows the .proto as
// it grows, without a hand-written reader per field:
//
//   name: arith-demo                       # string
//   task: {name: arith, type: numeric}     # message; enum without its prefix
//   student: {checkpoint: ./flan-t5-small} # ArtifactRef shorthand for {uri: ./flan-t5-small}
//   baselines:                             # repeated message
//     - {name: standard, objective: standard}
//
// Rules:
// - Keys are the fields' names as written in the .proto (snake_case); any other key is an unknown key,
//   reported by Document::Finish() with a "did you mean" hint.
// - Scalars are typed as Node::Read types them (numbers and booleans plain, not quoted); int32, int64,
//   uint32, uint64, double, float, bool, string and bytes (the scalar's text).
// - Enums take the value's full name ("OBJECTIVE_STEP_BY_STEP") or its short name, the full name without
//   the enum's prefix ("step_by_step", see EnumShortName), both case-insensitively.
// - Repeated fields take a list (null = empty) and replace what the message held; map<string, V> fields
//   take a mapping; message fields take a mapping (null = present and empty).
// - Members of a oneof are ordinary keys; setting two of one oneof is a problem naming both.
// - Fields with presence (proto3 `optional`, messages) are set exactly when their key is present.
// - A distill.v1.ArtifactRef field may be written as a plain string, meaning its `uri`.
// - google.protobuf.* messages (Timestamp, Duration, ...) and maps with non-string keys are rejected as
//   "unsupported field type".

#include <string>
#include <type_traits>

#include "common/config/yaml.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/generated_enum_reflection.h"
#include "google/protobuf/message.h"

namespace distill::config {

// Reads every key of `node` into the field of that name in `*message`, by the rules above. Problems
// are recorded in `node`'s Document and reported by its Finish(); after one, `*message` may be partly
// filled and is meant to be discarded. Fields whose key is absent keep their value, so `*message` may
// hold defaults. `message` must not be null.
void ReadProto(Node node, google::protobuf::Message* message);

// The lower-case name of an enum value without its enum's prefix, which is the enum's type name in
// UPPER_SNAKE followed by "_": "step_by_step" for OBJECTIVE_STEP_BY_STEP of Objective, "jsonl" for
// DATASET_FORMAT_JSONL of DatasetFormat. Word breaks of the type name need not match the value's
// ("OpenAiEndpoint" strips "OPENAI_ENDPOINT_"). A value without the prefix keeps its whole name.
std::string EnumShortName(const google::protobuf::EnumValueDescriptor* value);

// EnumShortName of a generated enum's value: ShortName(v1::OBJECTIVE_STEP_BY_STEP) == "step_by_step". A
// number that names no value (an open enum holding an unknown value) is written as its decimal digits.
template <typename E>
std::string ShortName(E value) {
  static_assert(std::is_enum_v<E>, "ShortName takes a generated protobuf enum");
  const google::protobuf::EnumValueDescriptor* descriptor =
      google::protobuf::GetEnumDescriptor<E>()->FindValueByNumber(static_cast<int>(value));
  return descriptor == nullptr ? std::to_string(static_cast<int>(value)) : EnumShortName(descriptor);
}

}  // namespace distill::config

#endif  // DISTILL_COMMON_CONFIG_PROTO_YAML_H_
