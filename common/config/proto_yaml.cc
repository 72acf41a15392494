#include "common/config/proto_yaml.h"

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "common/strings/strings.h"

namespace distill::config {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::OneofDescriptor;
using google::protobuf::Reflection;
using strings::Cat;
using strings::ToAbsl;

// Matched by full name rather than by type so that common/config does not depend on distill's protos.
constexpr std::string_view kArtifactRef = "distill.v1.ArtifactRef";

std::string Quote(std::string_view text) { return Cat("\"", absl::CHexEscape(ToAbsl(text)), "\""); }

std::string Lower(std::string_view text) { return absl::AsciiStrToLower(ToAbsl(text)); }

// `value_name` without the prefix spelled by `type_name` in UPPER_SNAKE and "_". The type name's letters
// are matched in order, allowing an underscore in the value between any two of them, so the prefix need
// not break words where the type name's capitals do ("OpenAiEndpoint" matches "OPENAI_ENDPOINT_").
std::string_view StripEnumPrefix(std::string_view type_name, std::string_view value_name) {
  size_t i = 0;
  for (char c : type_name) {
    if (c != '_' && i > 0 && i < value_name.size() && value_name[i] == '_') ++i;
    if (i >= value_name.size() || absl::ascii_toupper(static_cast<unsigned char>(c)) != value_name[i]) {
      return value_name;
    }
    ++i;
  }
  if (i + 1 >= value_name.size() || value_name[i] != '_') return value_name;
  return value_name.substr(i + 1);
}

// "one of: a, b, c": the short names worth writing. The zero value "unspecified" is accepted but not
// offered, since writing it means the same as leaving the key out.
std::string ExpectedEnum(const EnumDescriptor* type) {
  std::string out = "one of: ";
  bool first = true;
  for (int i = 0; i < type->value_count(); ++i) {
    const EnumValueDescriptor* value = type->value(i);
    std::string name = EnumShortName(value);
    if (value->number() == 0 && name == "unspecified") continue;
    if (!first) out.append(", ");
    out.append(name);
    first = false;
  }
  return out;
}

// The value `text` names, by full or short name in any case; null if none.
const EnumValueDescriptor* FindEnumValue(const EnumDescriptor* type, std::string_view text) {
  std::string lower = Lower(text);
  for (int i = 0; i < type->value_count(); ++i) {
    const EnumValueDescriptor* value = type->value(i);
    if (lower == Lower(value->name()) || lower == EnumShortName(value)) return value;
  }
  return nullptr;
}

// Why `field` cannot be read from YAML, or "" if it can. Well-known types would read as their raw
// fields (a Timestamp as {seconds, nanos}), which no one should have to write; they need a proper
// scalar form before they are accepted.
std::string UnsupportedReason(const FieldDescriptor* field) {
  const FieldDescriptor* value = field;
  if (field->is_map()) {
    const FieldDescriptor* key = field->message_type()->map_key();
    if (key->cpp_type() != FieldDescriptor::CPPTYPE_STRING) {
      return Cat("unsupported field type: a map with ", key->type_name(), " keys");
    }
    value = field->message_type()->map_value();
  }
  if (value->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
      value->message_type()->file()->package() == "google.protobuf") {
    return Cat("unsupported field type ", value->message_type()->full_name());
  }
  return "";
}

// Reads the value at `key` into the singular `field` of `*message`. `key` is the field's name, or a
// map key when `message` is a map entry and `field` its value.
void ReadSingular(Node& node, const std::string& key, const FieldDescriptor* field, Message* message) {
  const Reflection* reflection = message->GetReflection();
  // A malformed scalar leaves the value read unchanged; writing it back then is harmless, since the
  // Document reports the problem and the message is discarded.
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t value = reflection->GetInt32(*message, field);
      node.Read(key, &value);
      reflection->SetInt32(message, field, value);
      return;
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t value = reflection->GetInt64(*message, field);
      node.Read(key, &value);
      reflection->SetInt64(message, field, value);
      return;
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t value = reflection->GetUInt32(*message, field);
      node.Read(key, &value);
      reflection->SetUInt32(message, field, value);
      return;
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t value = reflection->GetUInt64(*message, field);
      node.Read(key, &value);
      reflection->SetUInt64(message, field, value);
      return;
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      double value = reflection->GetDouble(*message, field);
      node.Read(key, &value);
      reflection->SetDouble(message, field, value);
      return;
    }
    case FieldDescriptor::CPPTYPE_FLOAT: {
      float value = reflection->GetFloat(*message, field);
      node.Read(key, &value);
      reflection->SetFloat(message, field, value);
      return;
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool value = reflection->GetBool(*message, field);
      node.Read(key, &value);
      reflection->SetBool(message, field, value);
      return;
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string value = reflection->GetString(*message, field);
      node.Read(key, &value);
      reflection->SetString(message, field, std::move(value));
      return;
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const EnumDescriptor* type = field->enum_type();
      std::string expected = ExpectedEnum(type);
      node.ReadCustom(key, expected, [&](std::string_view text) -> std::string {
        const EnumValueDescriptor* value = FindEnumValue(type, text);
        if (value == nullptr) return Cat("expected ", expected, "; got ", Quote(text));
        reflection->SetEnum(message, field, value);
        return "";
      });
      return;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  const Descriptor* type = field->message_type();
  if (type->full_name() == kArtifactRef && node.ShapeOf(key) == Node::Shape::kScalar) {
    const FieldDescriptor* uri = type->FindFieldByName("uri");
    if (uri == nullptr || uri->cpp_type() != FieldDescriptor::CPPTYPE_STRING || uri->is_repeated()) {
      node.MarkKnown(key);
      node.Error(key, Cat(kArtifactRef, " has no string field uri to read a plain string into"));
      return;
    }
    std::string text;
    node.Read(key, &text);
    Message* ref = reflection->MutableMessage(message, field);
    ref->Clear();
    ref->GetReflection()->SetString(ref, uri, std::move(text));
    return;
  }
  ReadProto(node.Child(key), reflection->MutableMessage(message, field));
}

template <typename T, typename Add>
void ReadScalars(Node& node, const std::string& key, Add add) {
  std::vector<T> values;
  node.Read(key, &values);
  for (const T& value : values) add(value);
}

void ReadRepeated(Node& node, const std::string& key, const FieldDescriptor* field, Message* message) {
  const Reflection* reflection = message->GetReflection();
  // The list replaces what the message held, as Node's list reads do.
  reflection->ClearField(message, field);
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      ReadScalars<int32_t>(node, key, [&](int32_t v) { reflection->AddInt32(message, field, v); });
      return;
    case FieldDescriptor::CPPTYPE_INT64:
      ReadScalars<int64_t>(node, key, [&](int64_t v) { reflection->AddInt64(message, field, v); });
      return;
    case FieldDescriptor::CPPTYPE_UINT32:
      ReadScalars<uint32_t>(node, key, [&](uint32_t v) { reflection->AddUInt32(message, field, v); });
      return;
    case FieldDescriptor::CPPTYPE_UINT64:
      ReadScalars<uint64_t>(node, key, [&](uint64_t v) { reflection->AddUInt64(message, field, v); });
      return;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      ReadScalars<double>(node, key, [&](double v) { reflection->AddDouble(message, field, v); });
      return;
    case FieldDescriptor::CPPTYPE_FLOAT:
      ReadScalars<float>(node, key, [&](float v) { reflection->AddFloat(message, field, v); });
      return;
    case FieldDescriptor::CPPTYPE_BOOL:
      ReadScalars<bool>(node, key, [&](bool v) { reflection->AddBool(message, field, v); });
      return;
    case FieldDescriptor::CPPTYPE_STRING:
      ReadScalars<std::string>(node, key,
                               [&](const std::string& v) { reflection->AddString(message, field, v); });
      return;
    case FieldDescriptor::CPPTYPE_ENUM: {
      const EnumDescriptor* type = field->enum_type();
      std::string expected = ExpectedEnum(type);
      node.ReadCustomList(key, expected, [&](size_t, std::string_view text) -> std::string {
        const EnumValueDescriptor* value = FindEnumValue(type, text);
        if (value == nullptr) return Cat("expected ", expected, "; got ", Quote(text));
        reflection->AddEnum(message, field, value);
        return "";
      });
      return;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      for (Node child : node.Children(key)) ReadProto(child, reflection->AddMessage(message, field));
      return;
  }
}

// A map<string, V> from a mapping whose keys are the map's keys; each value reads as a singular V.
void ReadMap(Node& node, const std::string& key, const FieldDescriptor* field, Message* message) {
  const Reflection* reflection = message->GetReflection();
  reflection->ClearField(message, field);
  const Descriptor* entry_type = field->message_type();
  Node entries = node.Child(key);
  for (const std::string& name : entries.Keys()) {
    Message* entry = reflection->AddMessage(message, field);
    entry->GetReflection()->SetString(entry, entry_type->map_key(), name);
    ReadSingular(entries, name, entry_type->map_value(), entry);
  }
}

}  // namespace

void ReadProto(Node node, Message* message) {
  const Descriptor* descriptor = message->GetDescriptor();
  // Every member of a oneof is still read below, so that none is reported as an unknown key as well.
  for (int i = 0; i < descriptor->real_oneof_decl_count(); ++i) {
    const OneofDescriptor* oneof = descriptor->oneof_decl(i);
    const FieldDescriptor* first = nullptr;
    for (int j = 0; j < oneof->field_count(); ++j) {
      const FieldDescriptor* member = oneof->field(j);
      if (!node.Has(member->name())) continue;
      if (first == nullptr) {
        first = member;
        continue;
      }
      node.Error(member->name(), Cat("cannot be set together with \"", first->name(),
                                     "\" (both belong to oneof \"", oneof->name(), "\"; set only one)"));
    }
  }
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    const std::string& key = field->name();
    // Has() also offers every field name as a "did you mean" suggestion for unknown keys.
    if (!node.Has(key)) continue;
    if (std::string reason = UnsupportedReason(field); !reason.empty()) {
      node.MarkKnown(key);
      node.Error(key, reason);
    } else if (field->is_map()) {
      ReadMap(node, key, field, message);
    } else if (field->is_repeated()) {
      ReadRepeated(node, key, field, message);
    } else {
      ReadSingular(node, key, field, message);
    }
  }
}

std::string EnumShortName(const EnumValueDescriptor* value) {
  return Lower(StripEnumPrefix(value->type()->name(), value->name()));
}

}  // namespace distill::config
