// The shared module that holds every call into libsentencepiece; see sentencepiece_backend.h. Built
// as a MODULE, embedded into distill_common_student_tokenizer, and loaded by sentencepiece_loader.cc.
// No abseil header may be included here.

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstddef>
#include <unordered_map>

#include "common/student/tokenizer/sentencepiece_backend.h"

namespace distill::student::internal {
namespace {

SpmStatus FromSpm(const sentencepiece::util::Status& status) {
  if (status.ok()) return {};
  return SpmStatus{static_cast<int>(status.code()), status.message()};
}

// Feeds SentencePieceTrainer from memory instead of a file.
class VectorIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VectorIterator(const std::vector<std::string>& texts) : texts_(texts) {}
  bool done() const override { return index_ >= texts_.size(); }
  void Next() override { ++index_; }
  const std::string& value() const override { return texts_[index_]; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }

 private:
  const std::vector<std::string>& texts_;
  size_t index_ = 0;
};

class Processor : public SpmProcessor {
 public:
  SpmStatus Load(const std::string& serialized) override {
    return FromSpm(processor_.LoadFromSerializedProto(serialized));
  }
  int piece_size() const override { return processor_.GetPieceSize(); }
  int pad_id() const override { return processor_.pad_id(); }
  int eos_id() const override { return processor_.eos_id(); }
  int unk_id() const override { return processor_.unk_id(); }
  int bos_id() const override { return processor_.bos_id(); }
  bool IsControl(int id) const override { return processor_.IsControl(id); }
  bool IsUnknown(int id) const override { return processor_.IsUnknown(id); }
  SpmStatus Encode(std::string_view text, std::vector<int>* ids) const override {
    return FromSpm(processor_.Encode(text, ids));
  }
  SpmStatus Decode(const std::vector<int>& ids, std::string* text) const override {
    return FromSpm(processor_.Decode(ids, text));
  }
  std::string IdToPiece(int id) const override { return processor_.IdToPiece(id); }
  int PieceToId(std::string_view piece) const override { return processor_.PieceToId(piece); }

 private:
  sentencepiece::SentencePieceProcessor processor_;
};

class Library : public SpmLibrary {
 public:
  std::unique_ptr<SpmProcessor> NewProcessor() const override { return std::make_unique<Processor>(); }

  SpmStatus Train(const std::vector<std::pair<std::string, std::string>>& flags,
                  const std::vector<std::string>& texts, std::string* serialized) const override {
    std::unordered_map<std::string, std::string> kwargs(flags.begin(), flags.end());
    // "minloglevel" is not a TrainerSpec field: SentencePieceTrainer consumes it to set its (global)
    // log level. 1 keeps warnings and errors and drops the per-iteration INFO lines.
    kwargs.emplace("minloglevel", "1");
    VectorIterator iterator(texts);
    return FromSpm(sentencepiece::SentencePieceTrainer::Train(kwargs, &iterator, serialized));
  }
};

}  // namespace
}  // namespace distill::student::internal

extern "C" __attribute__((visibility("default"))) const distill::student::internal::SpmLibrary*
DistillSentencePieceLibrary() {
  static const distill::student::internal::Library* const library =
      new distill::student::internal::Library();
  return library;
}
