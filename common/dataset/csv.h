#ifndef DISTILL_COMMON_DATASET_CSV_H_
#define DISTILL_COMMON_DATASET_CSV_H_

// RFC 4180 comma-separated values: fields separated by ',', records by CRLF or LF, a field in double quotes
// may hold commas, line breaks and doubled quotes (""). A UTF-8 byte-order mark before the first field is
// skipped. Used for datasets given as CSV with a header row.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace distill::dataset {

struct CsvRecord {
  // 1-based line where the record starts (a quoted field may span lines).
  int line = 0;
  std::vector<std::string> fields;
};

// Splits `text` into records; empty lines are skipped. INVALID_ARGUMENT "<name>:<line>: ..." for an
// unterminated quoted field or a quote inside an unquoted field.
absl::StatusOr<std::vector<CsvRecord>> ParseCsv(std::string_view text, std::string_view name);

}  // namespace distill::dataset

#endif  // DISTILL_COMMON_DATASET_CSV_H_
