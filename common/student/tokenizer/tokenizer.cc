#include "common/student/tokenizer/tokenizer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/numbers.h"
#include "common/status/macros.h"
#include "common/strings/strings.h"
#include "common/student/tokenizer/sentencepiece_backend.h"

namespace distill::student {
namespace {

using internal::SpmProcessor;
using internal::SpmStatus;

absl::StatusOr<const internal::SpmLibrary*> SentencePiece() {
  std::string error;
  const internal::SpmLibrary* library = internal::GetSpmLibrary(&error);
  if (library == nullptr) return absl::InternalError(error);
  return library;
}

// SentencePiece prefixes failed checks with "./src/file.cc(123) [expression] "; keep what follows.
std::string_view SpmMessage(const SpmStatus& status) {
  std::string_view message = status.message;
  const size_t bracket = message.find("] ");
  if (message.rfind("./src/", 0) == 0 && bracket != std::string_view::npos) {
    message.remove_prefix(bracket + 2);
  }
  return message;
}

// Rewrites SentencePiece's "Vocabulary size too high (300). Please set it to a value <= 53." in terms
// of TrainOptions.
absl::Status TrainError(const SpmStatus& status, size_t text_count, const TrainOptions& options) {
  const std::string_view message = SpmMessage(status);
  if (message.find("Vocabulary size too high") != std::string_view::npos) {
    const size_t at = message.find("<= ");
    int max_size = 0;
    if (at != std::string_view::npos) {
      std::string_view digits = message.substr(at + 3);
      digits = digits.substr(0, digits.find_first_not_of("0123456789"));
      if (!absl::SimpleAtoi(strings::ToAbsl(digits), &max_size)) max_size = 0;
    }
    if (max_size > 0) {
      return absl::InvalidArgumentError(strings::Cat(
          "tokenizer training: vocab_size ", options.vocab_size, " is too large for these ", text_count,
          " texts: they yield at most ", max_size, " pieces; set vocab_size <= ", max_size,
          ", train on more text, or set hard_vocab_limit=false"));
    }
  }
  return absl::InvalidArgumentError(
      strings::Cat("tokenizer training on ", text_count, " texts failed: ", message));
}

absl::Status ValidateTrainOptions(const std::vector<std::string>& texts, const TrainOptions& options) {
  if (texts.empty()) {
    return absl::InvalidArgumentError("tokenizer training: no texts given");
  }
  if (options.vocab_size <= 3) {
    return absl::InvalidArgumentError(strings::Cat(
        "tokenizer training: vocab_size must be > 3 (pad, eos, unk and at least one piece), got ",
        options.vocab_size));
  }
  if (!(options.character_coverage > 0.0 && options.character_coverage <= 1.0)) {
    return absl::InvalidArgumentError(strings::Cat(
        "tokenizer training: character_coverage must be in (0, 1], got ", options.character_coverage));
  }
  if (options.num_threads < 1) {
    return absl::InvalidArgumentError(
        strings::Cat("tokenizer training: num_threads must be >= 1, got ", options.num_threads));
  }
  return absl::OkStatus();
}

std::string FormatDouble(double value) {
  std::ostringstream out;
  out.precision(17);
  out << value;
  return out.str();
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<SpmProcessor> processor, std::string serialized)
    : processor_(std::move(processor)), serialized_(std::move(serialized)) {}

Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& spiece_model_path) {
  std::error_code error;
  const std::filesystem::file_status file = std::filesystem::status(spiece_model_path, error);
  if (!std::filesystem::exists(file)) {
    return absl::NotFoundError(
        strings::Cat("tokenizer model ", spiece_model_path, ": no such file (expected a SentencePiece "
                     "model such as a checkpoint's spiece.model)"));
  }
  if (!std::filesystem::is_regular_file(file)) {
    return absl::InvalidArgumentError(strings::Cat(
        "tokenizer model ", spiece_model_path, ": not a regular file (expected a SentencePiece model "
        "such as a checkpoint's spiece.model)"));
  }
  std::ifstream in(spiece_model_path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad() || !in.is_open()) {
    return absl::InvalidArgumentError(strings::Cat("tokenizer model ", spiece_model_path,
                                                   ": cannot read: ", std::strerror(errno)));
  }
  return FromSerialized(std::move(bytes), spiece_model_path);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromSerialized(std::string serialized,
                                                                     std::string_view source) {
  ASSIGN_OR_RETURN(const internal::SpmLibrary* library, SentencePiece());
  std::unique_ptr<SpmProcessor> processor = library->NewProcessor();
  if (serialized.empty()) {
    return absl::InvalidArgumentError(
        strings::Cat("tokenizer model ", source, ": empty, not a SentencePiece model"));
  }
  if (SpmStatus status = processor->Load(serialized); !status.ok()) {
    std::string_view why = SpmMessage(status);
    // A failed ModelProto parse comes back with nothing after the location prefix.
    if (why.empty()) why = "its bytes do not parse as a ModelProto";
    return absl::InvalidArgumentError(
        strings::Cat("tokenizer model ", source, ": not a valid SentencePiece model (", why, ")"));
  }
  if (processor->pad_id() != kPadId || processor->eos_id() != kEosId ||
      processor->unk_id() != kUnkId) {
    return absl::FailedPreconditionError(strings::Cat(
        "tokenizer model ", source, ": special ids are pad=", processor->pad_id(),
        " eos=", processor->eos_id(), " unk=", processor->unk_id(), ", but the T5 student expects pad=",
        kPadId, " eos=", kEosId, " unk=", kUnkId,
        " (train with --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1)"));
  }
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(processor), std::move(serialized)));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Train(const std::vector<std::string>& texts,
                                                            const TrainOptions& options) {
  if (absl::Status status = ValidateTrainOptions(texts, options); !status.ok()) return status;
  const std::vector<std::pair<std::string, std::string>> flags = {
      {"model_type", "unigram"},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"hard_vocab_limit", options.hard_vocab_limit ? "true" : "false"},
      {"character_coverage", FormatDouble(options.character_coverage)},
      {"split_digits", options.split_digits ? "true" : "false"},
      {"num_threads", std::to_string(options.num_threads)},
      {"pad_id", std::to_string(kPadId)},
      {"eos_id", std::to_string(kEosId)},
      {"unk_id", std::to_string(kUnkId)},
      {"bos_id", "-1"},
      // Use every text, in the given order: no sampling, so the result depends only on the input.
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
  };
  ASSIGN_OR_RETURN(const internal::SpmLibrary* library, SentencePiece());
  std::string serialized;
  if (SpmStatus status = library->Train(flags, texts, &serialized); !status.ok()) {
    return TrainError(status, texts.size(), options);
  }
  return FromSerialized(std::move(serialized), "(trained in memory)");
}

absl::Status Tokenizer::Save(const std::string& path) const {
  std::string temp = path + ".tmp-XXXXXX";
  const int fd = mkstemp(temp.data());
  if (fd < 0) {
    const int saved = errno;
    return absl::ErrnoToStatus(saved, strings::Cat("saving tokenizer model to ", path,
                                                   ": cannot create a temporary file beside it"));
  }
  const char* data = serialized_.data();
  size_t left = serialized_.size();
  int write_errno = 0;
  while (left > 0) {
    const ssize_t written = ::write(fd, data, left);
    if (written < 0) {
      if (errno == EINTR) continue;
      write_errno = errno;
      break;
    }
    data += written;
    left -= static_cast<size_t>(written);
  }
  if (write_errno == 0 && ::fsync(fd) != 0) write_errno = errno;
  if (::close(fd) != 0 && write_errno == 0) write_errno = errno;
  if (write_errno == 0 && ::rename(temp.c_str(), path.c_str()) != 0) write_errno = errno;
  if (write_errno != 0) {
    ::unlink(temp.c_str());
    return absl::ErrnoToStatus(write_errno, strings::Cat("saving tokenizer model to ", path));
  }
  return absl::OkStatus();
}

int Tokenizer::vocab_size() const { return processor_->piece_size(); }

absl::Status Tokenizer::SetSentinelCount(int count) {
  if (count < 0) {
    return absl::InvalidArgumentError(
        strings::Cat("tokenizer: sentinel count must be >= 0, got ", count));
  }
  sentinel_count_ = count;
  return absl::OkStatus();
}

int Tokenizer::SentinelId(int index) const {
  if (index < 0 || index >= sentinel_count_) return -1;
  return vocab_size() + sentinel_count_ - 1 - index;
}

std::vector<int> Tokenizer::Encode(std::string_view text, bool add_eos) const {
  std::vector<int> ids;
  // A loaded model encodes any byte string (bad UTF-8 becomes unk), so a failure here would be a
  // SentencePiece bug; the text then encodes as nothing rather than failing every caller.
  if (!processor_->Encode(text, &ids).ok()) ids.clear();
  if (add_eos) ids.push_back(kEosId);
  return ids;
}

Tokenizer::Batch Tokenizer::EncodeBatch(const std::vector<std::string>& texts, int max_length,
                                        bool pad_to_longest) const {
  std::vector<std::vector<int>> rows;
  rows.reserve(texts.size());
  size_t longest = 0;
  for (const std::string& text : texts) {
    std::vector<int> ids = Encode(text, /*add_eos=*/true);
    if (max_length > 0 && ids.size() > static_cast<size_t>(max_length)) {
      ids.resize(static_cast<size_t>(max_length));
      ids.back() = kEosId;
    }
    longest = std::max(longest, ids.size());
    rows.push_back(std::move(ids));
  }
  Batch batch;
  batch.rows = static_cast<int>(rows.size());
  batch.cols = (pad_to_longest || max_length <= 0) ? static_cast<int>(longest) : max_length;
  const size_t cols = static_cast<size_t>(batch.cols);
  batch.ids.assign(rows.size() * cols, kPadId);
  batch.mask.assign(rows.size() * cols, 0);
  for (size_t r = 0; r < rows.size(); ++r) {
    std::copy(rows[r].begin(), rows[r].end(), batch.ids.begin() + r * cols);
    std::fill_n(batch.mask.begin() + r * cols, rows[r].size(), 1);
  }
  return batch;
}

std::string Tokenizer::Decode(const std::vector<int>& ids) const {
  const int size = vocab_size();
  std::vector<int> pieces;
  pieces.reserve(ids.size());
  for (int id : ids) {
    if (id == kEosId) break;
    if (id < 0 || id >= size) continue;
    if (processor_->IsControl(id) || processor_->IsUnknown(id)) continue;
    pieces.push_back(id);
  }
  std::string text;
  if (!processor_->Decode(pieces, &text).ok()) text.clear();
  return text;
}

std::string Tokenizer::IdToPiece(int id) const {
  const int size = vocab_size();
  if (id >= 0 && id < size) return processor_->IdToPiece(id);
  if (id >= size && id < size + sentinel_count_) return strings::Cat("<extra_id_", size + sentinel_count_ - 1 - id, ">");
  return "";
}

int Tokenizer::PieceToId(std::string_view piece) const {
  constexpr std::string_view kSentinel = "<extra_id_";
  if (piece.size() > kSentinel.size() + 1 && piece.substr(0, kSentinel.size()) == kSentinel &&
      piece.back() == '>') {
    int index = 0;
    for (char c : piece.substr(kSentinel.size(), piece.size() - kSentinel.size() - 1)) {
      if (c < '0' || c > '9' || index > 100000) return kUnkId;
      index = index * 10 + (c - '0');
    }
    const int id = SentinelId(index);
    return id < 0 ? kUnkId : id;
  }
  return processor_->PieceToId(piece);
}

}  // namespace distill::student
