#include "common/dataset/student_text.h"

#include <string>
#include <string_view>

namespace distill::dataset {
namespace {

std::string_view Trim(std::string_view text) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  return text;
}

}  // namespace

std::string CotAnswer(std::string_view generated) {
  std::string_view rest = generated;
  if (size_t arrow = generated.rfind("-->"); arrow != std::string_view::npos) rest = generated.substr(arrow + 3);
  if (size_t end = rest.find(Trim(kCotEnd)); end != std::string_view::npos) rest = rest.substr(0, end);
  return std::string(Trim(rest));
}

std::string CotRationale(std::string_view generated) {
  size_t arrow = generated.rfind("-->");
  if (arrow == std::string_view::npos) return "";
  return std::string(Trim(generated.substr(0, arrow)));
}

}  // namespace distill::dataset
