#ifndef DISTILL_COMMON_STRINGS_UTF8_H_
#define DISTILL_COMMON_STRINGS_UTF8_H_

// UTF-8 validation for text that leaves a process in a proto3 `string` or JSON (both require valid UTF-8),
// such as a model's decoded output, which may hold stray bytes.

#include <cstddef>
#include <string>
#include <string_view>

namespace distill::strings {

// Length of the longest prefix of `text` that does not end inside a multi-byte character: `text` minus a
// trailing incomplete (but so far well-formed) sequence of 1-3 bytes. Invalid bytes elsewhere are not
// looked at; SanitizeUtf8 replaces them.
size_t CompleteUtf8Prefix(std::string_view text);

// `text` with every byte that is not part of a well-formed UTF-8 sequence (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF, no truncated sequence) replaced by U+FFFD.
std::string SanitizeUtf8(std::string_view text);

// True when SanitizeUtf8(text) == text.
bool IsValidUtf8(std::string_view text);

}  // namespace distill::strings

#endif  // DISTILL_COMMON_STRINGS_UTF8_H_
