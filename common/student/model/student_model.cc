#include "common/student/model/student_model.h"

#include <string>
#include <utility>
#include <vector>

#include "common/student/model/t5_weights.h"

namespace distill::student {

int64_t StudentModel::NumParameters() const {
  int64_t total = 0;
  // parameters() lists a shared tensor once per owner; count each storage once.
  std::vector<const void*> seen;
  for (const torch::Tensor& p : module().parameters()) {
    const void* data = p.data_ptr();
    bool duplicate = false;
    for (const void* s : seen) duplicate = duplicate || s == data;
    if (duplicate) continue;
    seen.push_back(data);
    total += p.numel();
  }
  return total;
}

torch::Tensor ShiftRight(const torch::Tensor& labels, int64_t decoder_start_id, int64_t pad_id) {
  torch::Tensor start = torch::full({labels.size(0), 1}, decoder_start_id, labels.options());
  torch::Tensor shifted = torch::cat({start, labels.slice(/*dim=*/1, 0, labels.size(1) - 1)}, /*dim=*/1);
  return shifted.masked_fill(shifted.eq(-100), pad_id);
}

torch::Tensor T5Student::TargetLogits(const torch::Tensor& source_ids, const torch::Tensor& source_mask,
                                      const torch::Tensor& labels) {
  const T5Config& c = model_->config();
  return model_->Forward(source_ids, source_mask, ShiftRight(labels, c.decoder_start_token_id, c.pad_token_id));
}

absl::StatusOr<std::vector<std::vector<int>>> T5Student::Generate(const torch::Tensor& source_ids,
                                                                  const torch::Tensor& source_mask,
                                                                  const GenerationOptions& options) {
  return student::Generate(*model_, source_ids, source_mask, options);
}

GenerationOptions T5Student::DefaultGenerationOptions() const {
  GenerationOptions options;
  options.eos_id = model_->config().eos_token_id;
  options.decoder_start_id = model_->config().decoder_start_token_id;
  return options;
}

SafetensorsFile T5Student::ExportWeights() const { return student::ExportWeights(*model_); }

absl::Status T5Student::LoadWeights(const SafetensorsFile& file) { return student::LoadWeights(*model_, file); }

std::string T5Student::ConfigJson() const { return T5ConfigToJson(model_->config()); }

}  // namespace distill::student
