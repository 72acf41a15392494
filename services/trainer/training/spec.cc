#include "services/trainer/training/spec.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/dataset/example_json.h"
#include "common/hash/sha256.h"
#include "common/status/macros.h"
#include "common/strings/strings.h"
#include "common/student/runtime/device.h"
#include "common/student/student.h"
#include "services/curator/answers/normalizer.h"

namespace distill::trainer {
namespace {

constexpr char kHp[] = "training.hyperparameters.";

// Collects problems as "field: message".
class Problems {
 public:
  void Add(std::string_view field, std::string_view message) {
    list_.push_back(strings::Cat(field, ": ", message));
  }
  // A message that names its field already.
  void AddRaw(std::string message) { list_.push_back(std::move(message)); }
  template <typename T>
  void AtLeast(std::string_view field, T value, T min) {
    if (!(value >= min)) Add(field, strings::Cat("must be >= ", min, ", got ", value));
  }
  void Finite(std::string_view field, double value) {
    if (!std::isfinite(value)) Add(field, strings::Cat("must be finite, got ", value));
  }
  absl::Status ToStatus() const {
    if (list_.empty()) return absl::OkStatus();
    std::string joined;
    for (const std::string& p : list_) {
      if (!joined.empty()) joined += "; ";
      joined += p;
    }
    return absl::InvalidArgumentError(joined);
  }

 private:
  std::vector<std::string> list_;
};

std::string Hp(std::string_view field) { return strings::Cat(kHp, field); }

void CheckHyperparameters(const v1::Hyperparameters& h, Problems& p) {
  if (!(h.learning_rate() > 0) || !std::isfinite(h.learning_rate())) {
    p.Add(Hp("learning_rate"), strings::Cat("must be > 0, got ", h.learning_rate()));
  }
  if (h.batch_size() < 1) p.Add(Hp("batch_size"), strings::Cat("must be >= 1, got ", h.batch_size()));
  p.AtLeast(Hp("grad_accumulation_steps"), h.grad_accumulation_steps(), 0);
  p.AtLeast<int64_t>(Hp("warmup_steps"), h.warmup_steps(), 0);
  if (!v1::LrSchedule_IsValid(h.schedule()))
    p.Add(Hp("schedule"), strings::Cat("unknown value ", h.schedule()));
  p.AtLeast<int64_t>(Hp("max_steps"), h.max_steps(), 0);
  p.AtLeast(Hp("max_epochs"), h.max_epochs(), 0.0);
  p.Finite(Hp("max_epochs"), h.max_epochs());
  if (h.max_steps() <= 0 && !(h.max_epochs() > 0)) {
    p.Add(Hp("max_steps"), "one of max_steps and max_epochs must be > 0");
  }
  p.AtLeast(Hp("max_grad_norm"), h.max_grad_norm(), 0.0);
  p.Finite(Hp("max_grad_norm"), h.max_grad_norm());
  p.AtLeast(Hp("weight_decay"), h.weight_decay(), 0.0);
  p.Finite(Hp("weight_decay"), h.weight_decay());
  for (const auto& [name, value] :
       {std::pair<const char*, double>{"adam_beta1", h.adam_beta1()}, {"adam_beta2", h.adam_beta2()}}) {
    if (!(value >= 0 && value < 1)) p.Add(Hp(name), strings::Cat("must be in [0, 1), got ", value));
  }
  p.AtLeast(Hp("adam_epsilon"), h.adam_epsilon(), 0.0);
  p.Finite(Hp("adam_epsilon"), h.adam_epsilon());
  p.AtLeast<int64_t>(Hp("eval_interval_steps"), h.eval_interval_steps(), 0);
  p.AtLeast<int64_t>(Hp("checkpoint_interval_steps"), h.checkpoint_interval_steps(), 0);
  p.AtLeast(Hp("early_stopping_patience"), h.early_stopping_patience(), 0);
  if (!(h.early_stopping_min_delta() >= 0 && h.early_stopping_min_delta() <= 1)) {
    p.Add(Hp("early_stopping_min_delta"),
          strings::Cat("must be in [0, 1], got ", h.early_stopping_min_delta()));
  }
  for (const auto& [name, value] : {std::pair<const char*, int>{"max_source_tokens", h.max_source_tokens()},
                                    {"max_target_tokens", h.max_target_tokens()}}) {
    if (value < 0 || value == 1) p.Add(Hp(name), strings::Cat("must be 0 (default) or >= 2, got ", value));
  }
  if (h.has_dropout_rate() && !(h.dropout_rate() >= 0 && h.dropout_rate() < 1)) {
    p.Add(Hp("dropout_rate"), strings::Cat("must be in [0, 1), got ", h.dropout_rate()));
  }
  p.AtLeast(Hp("log_interval_steps"), h.log_interval_steps(), 0);
}

void CheckStudent(const v1::StudentInit& s, Problems& p) {
  switch (s.source_case()) {
    case v1::StudentInit::kPreset: {
      absl::StatusOr<student::T5Config> config = student::PresetConfig(s.preset());
      if (!config.ok())
        p.Add("student.preset",
              strings::Cat("unknown preset \"", s.preset(), "\" (known: tiny, mini, small, base)"));
      if (s.vocab_size() != 0 && (s.vocab_size() < 256 || s.vocab_size() > 256000)) {
        p.Add("student.vocab_size",
              strings::Cat("must be 0 (default) or in [256, 256000], got ", s.vocab_size()));
      }
      if (s.vocab_size() != 0 && s.has_tokenizer()) {
        p.Add("student.vocab_size", "must be 0 with student.tokenizer (the tokenizer fixes the vocabulary)");
      }
      if (s.has_tokenizer() && s.tokenizer().uri().empty()) p.Add("student.tokenizer.uri", "required");
      break;
    }
    case v1::StudentInit::kCheckpoint:
      if (s.checkpoint().uri().empty()) p.Add("student.checkpoint.uri", "required");
      if (s.vocab_size() != 0) p.Add("student.vocab_size", "must be 0 with student.checkpoint");
      if (s.has_tokenizer())
        p.Add("student.tokenizer", "only with student.preset (a checkpoint has its own)");
      break;
    default:
      p.Add("student", "one of preset or checkpoint is required");
  }
}

void CheckTraining(const v1::TrainingOptions& t, bool has_eval, Problems& p) {
  if (t.objective() == v1::OBJECTIVE_UNSPECIFIED || !v1::Objective_IsValid(t.objective())) {
    p.Add("training.objective",
          "required: OBJECTIVE_STANDARD, OBJECTIVE_STEP_BY_STEP or OBJECTIVE_COT_SEQUENCE");
  }
  if (t.has_alpha()) {
    if (t.objective() != v1::OBJECTIVE_STEP_BY_STEP) {
      p.Add("training.alpha", "only with OBJECTIVE_STEP_BY_STEP");
    } else if (!(t.alpha() >= 0 && t.alpha() <= 1)) {
      p.Add("training.alpha", strings::Cat("must be in [0, 1], got ", t.alpha()));
    }
  }
  if (!v1::TokenDistillation_IsValid(t.token_distillation())) {
    p.Add("training.token_distillation", strings::Cat("unknown value ", t.token_distillation()));
  }
  p.AtLeast("training.token_distillation_weight", t.token_distillation_weight(), 0.0);
  p.Finite("training.token_distillation_weight", t.token_distillation_weight());
  if (!t.has_hyperparameters()) {
    p.Add("training.hyperparameters", "required (learning_rate and batch_size)");
  } else {
    CheckHyperparameters(t.hyperparameters(), p);
    if (t.hyperparameters().early_stopping_patience() > 0 && !has_eval) {
      p.Add(Hp("early_stopping_patience"), "needs an eval set (eval.examples or eval.holdout_fraction)");
    }
  }
  if (!t.has_distributed()) {
    p.Add("training.distributed", "required (world_size)");
  } else {
    const v1::DistributedOptions& d = t.distributed();
    if (d.world_size() < 1)
      p.Add("training.distributed.world_size", strings::Cat("must be >= 1, got ", d.world_size()));
    p.AtLeast("training.distributed.threads_per_rank", d.threads_per_rank(), 0);
    if (!v1::CollectiveBackend_IsValid(d.backend())) {
      p.Add("training.distributed.backend", strings::Cat("unknown value ", d.backend()));
    }
    absl::StatusOr<student::DeviceRequest> device =
        student::ParseDeviceRequest(d.device(), "training.distributed.device");
    if (!device.ok()) {
      p.AddRaw(std::string(device.status().message()));
    } else {
      if (d.backend() == v1::COLLECTIVE_BACKEND_NCCL && device->kind == student::DeviceRequest::Kind::kCpu) {
        p.Add("training.distributed.backend",
              "NCCL needs a CUDA device, but training.distributed.device is \"cpu\"");
      }
      if (device->index >= 0 && d.world_size() > 1) {
        p.Add("training.distributed.device",
              strings::Cat("\"", d.device(), "\" pins one GPU, but world_size is ", d.world_size(),
                           ": use \"cuda\" (rank r takes GPU r)"));
      }
    }
  }
  p.AtLeast("training.max_worker_restarts", t.max_worker_restarts(), 0);
}

void CheckEval(const v1::EvalSet& e, Problems& p) {
  switch (e.source_case()) {
    case v1::EvalSet::kExamples:
      if (e.examples().uri().empty()) p.Add("eval.examples.uri", "required");
      break;
    case v1::EvalSet::kHoldoutFraction:
      if (!(e.holdout_fraction() > 0 && e.holdout_fraction() <= 0.5)) {
        p.Add("eval.holdout_fraction", strings::Cat("must be in (0, 0.5], got ", e.holdout_fraction()));
      }
      break;
    default:
      break;
  }
  p.AtLeast("eval.max_examples", e.max_examples(), 0);
  p.AtLeast("eval.max_new_tokens", e.max_new_tokens(), 0);
}

bool HasEval(const v1::RunSpec& spec) {
  return spec.has_eval() && spec.eval().source_case() != v1::EvalSet::SOURCE_NOT_SET;
}

}  // namespace

bool BuiltWithCuda() {
#if defined(DISTILL_WITH_CUDA) && DISTILL_WITH_CUDA
  return true;
#else
  return false;
#endif
}

absl::Status ValidateRunSpec(const v1::RunSpec& spec) {
  Problems p;
  if (spec.name().size() > 128)
    p.Add("name", strings::Cat("at most 128 characters, got ", spec.name().size()));
  if (!spec.has_dataset() || spec.dataset().uri().empty()) p.Add("dataset.uri", "required");
  if (!spec.has_task()) {
    p.Add("task", "required");
  } else if (spec.task().type() == v1::TASK_TYPE_UNSPECIFIED) {
    p.Add("task.type", "required");
  } else {
    absl::StatusOr<curator::AnswerNormalizer> normalizer = curator::AnswerNormalizer::Create(spec.task());
    // The normaliser names the field from "task." on ("task.labels[1].name: empty").
    if (!normalizer.ok()) p.AddRaw(std::string(normalizer.status().message()));
  }
  if (!spec.has_student()) {
    p.Add("student", "required");
  } else {
    CheckStudent(spec.student(), p);
  }
  if (!spec.has_training()) {
    p.Add("training", "required");
  } else {
    CheckTraining(spec.training(), HasEval(spec), p);
  }
  if (spec.has_eval()) CheckEval(spec.eval(), p);
  absl::Status invalid = p.ToStatus();
  if (!invalid.ok()) return invalid;

  const v1::DistributedOptions& d = spec.training().distributed();
  if (!BuiltWithCuda()) {
    if (d.backend() == v1::COLLECTIVE_BACKEND_NCCL) {
      return absl::FailedPreconditionError(
          "training.distributed.backend: NCCL needs a CUDA build (CMake option DISTILL_WITH_CUDA); this "
          "build is CPU-only: use COLLECTIVE_BACKEND_GLOO");
    }
    if (d.device().rfind("cuda", 0) == 0) {
      return absl::FailedPreconditionError(
          strings::Cat("training.distributed.device: \"", d.device(),
                       "\" needs a CUDA build (CMake option DISTILL_WITH_CUDA); this build is CPU-only: use "
                       "\"cpu\""));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckDeviceOnThisHost(const v1::RunSpec& spec) {
  using Kind = student::DeviceRequest::Kind;
  constexpr char kField[] = "training.distributed.device";
  const v1::DistributedOptions& d = spec.training().distributed();
  ASSIGN_OR_RETURN(const student::DeviceRequest device, student::ParseDeviceRequest(d.device(), kField));
  const int gpus = student::CudaDeviceCount();
  if (device.kind == Kind::kAuto && d.backend() == v1::COLLECTIVE_BACKEND_NCCL && gpus == 0) {
    return absl::FailedPreconditionError(
        "training.distributed.backend: NCCL needs a CUDA GPU, but this host has none (no CUDA device "
        "visible): use COLLECTIVE_BACKEND_GLOO or leave it unset");
  }
  // The ranks compute on GPUs for "cuda" and "cuda:N", and for the default on a host that has GPUs
  // (unless the backend is Gloo); then each rank needs its own.
  const bool on_gpus = device.kind == Kind::kCuda ||
                       (device.kind == Kind::kAuto && gpus > 0 && d.backend() != v1::COLLECTIVE_BACKEND_GLOO);
  if (!on_gpus) return absl::OkStatus();
  if (device.index >= 0 || gpus == 0) {
    return student::ResolveDevice(device, std::max(device.index, 0), kField).status();
  }
  if (d.world_size() > gpus) {
    const bool by_default = device.kind == Kind::kAuto;
    return absl::FailedPreconditionError(
        strings::Cat("training.distributed.world_size: ", d.world_size(), " ranks on ",
                     by_default ? "the default device (\"cuda\" here)" : "\"cuda\"",
                     " need one GPU each, but this host has ", gpus, " CUDA GPU", gpus == 1 ? "" : "s",
                     by_default ? ": lower world_size or set training.distributed.device to \"cpu\"" : ""));
  }
  return absl::OkStatus();
}

RunSettings ResolveRunSettings(const v1::RunSpec& spec) {
  RunSettings s;
  const v1::TrainingOptions& t = spec.training();
  const v1::Hyperparameters& h = t.hyperparameters();
  s.objective = t.objective();
  s.alpha = t.has_alpha() ? t.alpha() : 0.5;
  s.token_distillation = t.token_distillation();
  s.token_distillation_weight = t.token_distillation_weight() > 0 ? t.token_distillation_weight() : 1.0;
  s.learning_rate = h.learning_rate();
  s.batch_size = h.batch_size();
  s.grad_accumulation_steps = h.grad_accumulation_steps() > 0 ? h.grad_accumulation_steps() : 1;
  s.warmup_steps = h.warmup_steps();
  s.schedule = h.schedule() == v1::LR_SCHEDULE_UNSPECIFIED ? v1::LR_SCHEDULE_LINEAR : h.schedule();
  s.max_steps = h.max_steps();
  s.max_epochs = h.max_epochs();
  s.max_grad_norm = h.max_grad_norm();
  s.weight_decay = h.weight_decay();
  s.adam_beta1 = h.adam_beta1() > 0 ? h.adam_beta1() : 0.9;
  s.adam_beta2 = h.adam_beta2() > 0 ? h.adam_beta2() : 0.999;
  s.adam_epsilon = h.adam_epsilon() > 0 ? h.adam_epsilon() : 1e-8;
  s.seed = h.seed();
  s.eval_interval_steps = h.eval_interval_steps();
  s.checkpoint_interval_steps = h.checkpoint_interval_steps();
  s.early_stopping_patience = h.early_stopping_patience();
  s.early_stopping_min_delta = h.early_stopping_min_delta();
  s.max_source_tokens = h.max_source_tokens() > 0 ? h.max_source_tokens() : 512;
  s.max_target_tokens = h.max_target_tokens() > 0 ? h.max_target_tokens() : 256;
  if (h.has_dropout_rate()) s.dropout_rate = h.dropout_rate();
  s.log_interval_steps = h.log_interval_steps() > 0 ? h.log_interval_steps() : 10;

  const v1::DistributedOptions& d = t.distributed();
  s.world_size = d.world_size();
  const absl::StatusOr<student::DeviceRequest> device = student::ParseDeviceRequest(d.device(), "");
  if (device.ok() && device->kind == student::DeviceRequest::Kind::kCuda) {
    s.use_cuda = true;
    s.cuda_index = device->index;
  } else if (device.ok() && device->kind == student::DeviceRequest::Kind::kAuto) {
    s.use_cuda =
        BuiltWithCuda() && d.backend() != v1::COLLECTIVE_BACKEND_GLOO && student::CudaDeviceCount() > 0;
  }
  s.threads_per_rank = d.threads_per_rank();

  s.evaluate = HasEval(spec);
  if (s.evaluate && spec.eval().source_case() == v1::EvalSet::kHoldoutFraction) {
    s.holdout_fraction = spec.eval().holdout_fraction();
  }
  s.eval_max_examples = spec.eval().max_examples();
  s.eval_max_new_tokens = spec.eval().max_new_tokens() > 0            ? spec.eval().max_new_tokens()
                          : s.objective == v1::OBJECTIVE_COT_SEQUENCE ? 256
                                                                      : 128;
  return s;
}

std::string SpecHash(const v1::RunSpec& spec) {
  v1::RunSpec canonical = spec;
  canonical.clear_name();
  canonical.clear_output_uri();
  if (canonical.has_training()) {
    canonical.mutable_training()->clear_max_worker_restarts();
    if (canonical.training().has_distributed())
      canonical.mutable_training()->mutable_distributed()->clear_threads_per_rank();
  }
  // The JSON printer writes fields in field-number order, so equal messages print equally.
  return strings::Cat("sha256:", hash::Sha256Hex(dataset::ProtoToJson(canonical)));
}

}  // namespace distill::trainer
