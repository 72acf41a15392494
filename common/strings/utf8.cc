#include "common/strings/utf8.h"

#include <cstdint>

namespace distill::strings {
namespace {

// Length of the well-formed sequence starting at text[i], or 0 if the bytes there are not one (including a
// sequence cut off by the end of `text`). *truncated is set when the bytes are a valid start of a sequence
// that the end of `text` cuts off.
size_t SequenceLength(std::string_view text, size_t i, bool* truncated) {
  *truncated = false;
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t length = 0;
  uint8_t low = 0x80, high = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    if (b0 == 0xE0) low = 0xA0;   // no overlongs
    if (b0 == 0xED) high = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    if (b0 == 0xF0) low = 0x90;   // no overlongs
    if (b0 == 0xF4) high = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  for (size_t k = 1; k < length; ++k) {
    if (i + k >= text.size()) {
      *truncated = true;
      return 0;
    }
    const uint8_t b = byte(i + k);
    if (k == 1 ? (b < low || b > high) : (b < 0x80 || b > 0xBF)) return 0;
  }
  return length;
}

}  // namespace

size_t CompleteUtf8Prefix(std::string_view text) {
  // A trailing incomplete sequence is at most 3 bytes long.
  const size_t first = text.size() > 3 ? text.size() - 3 : 0;
  for (size_t i = first; i < text.size(); ++i) {
    const uint8_t b = static_cast<uint8_t>(text[i]);
    if (b < 0x80 || b >= 0xC0) {  // not a continuation byte: a sequence starts here
      bool truncated = false;
      SequenceLength(text, i, &truncated);
      if (truncated) return i;
    }
  }
  return text.size();
}

std::string SanitizeUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    bool truncated = false;
    const size_t length = SequenceLength(text, i, &truncated);
    if (length == 0) {
      out.append("\xEF\xBF\xBD");
      ++i;
    } else {
      out.append(text.substr(i, length));
      i += length;
    }
  }
  return out;
}

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    bool truncated = false;
    const size_t length = SequenceLength(text, i, &truncated);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

}  // namespace distill::strings
