#include "common/dataset/csv.h"

#include "common/strings/strings.h"

namespace distill::dataset {

absl::StatusOr<std::vector<CsvRecord>> ParseCsv(std::string_view text, std::string_view name) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<CsvRecord> records;
  CsvRecord record;
  std::string field;
  int line = 1;
  bool in_quotes = false;
  bool quoted = false;       // the current field started with a quote
  bool field_started = false;
  record.line = 1;
  auto end_field = [&] {
    record.fields.push_back(std::move(field));
    field.clear();
    quoted = false;
    field_started = false;
  };
  auto end_record = [&] {
    // A line with nothing on it is not a record.
    if (!(record.fields.size() == 1 && record.fields[0].empty() && !quoted)) records.push_back(std::move(record));
    record = CsvRecord();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field.push_back('"');
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line;
        field.push_back(c);
      }
      continue;
    }
    if (c == '"') {
      if (field_started) {
        return absl::InvalidArgumentError(
            strings::Cat(name, ":", line, ": a quote inside an unquoted field (quote the whole field and double it)"));
      }
      in_quotes = quoted = field_started = true;
    } else if (c == ',') {
      end_field();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      const bool had_quotes = quoted;
      end_field();
      quoted = had_quotes;
      end_record();
      quoted = false;
      ++line;
      record.line = line;
    } else {
      if (quoted) {
        return absl::InvalidArgumentError(strings::Cat(name, ":", line, ": text after a closing quote"));
      }
      field_started = true;
      field.push_back(c);
    }
  }
  if (in_quotes) return absl::InvalidArgumentError(strings::Cat(name, ":", record.line, ": unterminated quoted field"));
  if (field_started || !record.fields.empty()) {
    const bool had_quotes = quoted;
    end_field();
    quoted = had_quotes;
    end_record();
  }
  return records;
}

}  // namespace distill::dataset
