#ifndef DISTILL_COMMON_STUDENT_TOKENIZER_SENTENCEPIECE_BACKEND_H_
#define DISTILL_COMMON_STUDENT_TOKENIZER_SENTENCEPIECE_BACKEND_H_

// Internal to common/student/tokenizer: the boundary between distill and Debian's libsentencepiece.
//
// Why a boundary: Debian's libsentencepiece.so carries its own copy of protobuf-lite 3.14 and exports
// its symbols (google::protobuf::...). A process that also loads the system libprotobuf (3.21, which
// every gRPC binary does) gets one of the two copies for both, and dies at start-up ("compiled against
// version 3.14.0 of the Protocol Buffer runtime ... not compatible") or crashes later. So SentencePiece
// is only called from a small shared module (sentencepiece_shim.cc) that is embedded in this library
// and loaded with dlopen(RTLD_LOCAL | RTLD_DEEPBIND), which makes it and libsentencepiece resolve
// their protobuf symbols to their own copy. Nothing else in distill links libsentencepiece.
//
// Also, Debian's sentencepiece_processor.h declares `namespace absl { using std::string_view; }`,
// which collides with Debian's abseil (its absl::string_view is a class of its own): a translation
// unit can include SentencePiece or abseil, never both. This header includes neither. Errors cross the
// boundary as (code, message) pairs numbered like absl::StatusCode.
//
// Use Tokenizer (tokenizer.h) instead; tests may use this to build models Tokenizer refuses.

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace distill::student::internal {

struct SpmStatus {
  int code = 0;  // absl::StatusCode numbering; 0 is OK.
  std::string message;
  bool ok() const { return code == 0; }
};

// One SentencePiece model. Thread-compatible while loading; the const methods are safe to call
// concurrently once Load() has returned OK.
class SpmProcessor {
 public:
  virtual ~SpmProcessor() = default;

  // Parses a serialized ModelProto (the bytes of a .model file).
  virtual SpmStatus Load(const std::string& serialized) = 0;

  virtual int piece_size() const = 0;
  virtual int pad_id() const = 0;
  virtual int eos_id() const = 0;
  virtual int unk_id() const = 0;
  virtual int bos_id() const = 0;
  // Precondition for both: 0 <= id < piece_size().
  virtual bool IsControl(int id) const = 0;
  virtual bool IsUnknown(int id) const = 0;

  virtual SpmStatus Encode(std::string_view text, std::vector<int>* ids) const = 0;
  // Precondition: every id is in [0, piece_size()).
  virtual SpmStatus Decode(const std::vector<int>& ids, std::string* text) const = 0;
  // The piece's text ("\u2581" marks a word start). Precondition: 0 <= id < piece_size().
  virtual std::string IdToPiece(int id) const = 0;
  // The id of the piece with exactly this text; unk_id() when there is none.
  virtual int PieceToId(std::string_view piece) const = 0;
};

// Entry points of the shim module. Thread-safe.
class SpmLibrary {
 public:
  virtual ~SpmLibrary() = default;

  virtual std::unique_ptr<SpmProcessor> NewProcessor() const = 0;

  // Trains a model with SentencePieceTrainer's flags (`{"vocab_size", "8000"}`, ...; no `input` or
  // `model_prefix`) on `texts`, in memory, and stores the serialized ModelProto in `*serialized`.
  // Logging below warnings is silenced.
  virtual SpmStatus Train(const std::vector<std::pair<std::string, std::string>>& flags,
                          const std::vector<std::string>& texts, std::string* serialized) const = 0;
};

// The process's SentencePiece, loaded on first use and never unloaded. Returns nullptr and sets
// `*error` (which must not be null) when the module cannot be loaded. Thread-safe.
const SpmLibrary* GetSpmLibrary(std::string* error);

}  // namespace distill::student::internal

// The symbol the shim module exports; returns its process-lifetime SpmLibrary.
extern "C" const distill::student::internal::SpmLibrary* DistillSentencePieceLibrary();

#endif  // DISTILL_COMMON_STUDENT_TOKENIZER_SENTENCEPIECE_BACKEND_H_
