#include "services/coordinator/job_validation.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/strings/strings.h"
#include "services/coordinator/pipeline/pipeline.h"
#include "services/trainer/training/spec.h"

namespace distill::coordinator {
namespace {

bool IsNameChar(char c, bool dash, bool underscore) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (dash && c == '-') || (underscore && c == '_');
}

}  // namespace

absl::Status ValidateJobSpec(const v1::JobSpec& spec) {
  std::vector<std::string> problems;
  auto problem = [&](auto&&... parts) { problems.push_back(strings::Cat(parts...)); };

  // name: 1-63 of [a-z0-9-], starting with a letter.
  {
    bool ok = !spec.name().empty() && spec.name().size() <= 63 && spec.name()[0] >= 'a' && spec.name()[0] <= 'z';
    for (char c : spec.name()) ok = ok && IsNameChar(c, true, false);
    if (!ok) problem("name: must be 1-63 characters of [a-z0-9-] starting with a letter, got \"", spec.name(), "\"");
  }
  if (!spec.has_task()) problem("task: is required");

  // dataset
  if (!spec.has_dataset()) {
    problem("dataset: is required");
  } else {
    const v1::DatasetSource& d = spec.dataset();
    if (d.uri().empty()) problem("dataset.uri: is required");
    if (d.max_examples() < 0) problem("dataset.max_examples: must be >= 0, got ", d.max_examples());
    const v1::DatasetSplit& split = d.split();
    if (split.has_random()) {
      const double f = split.random().test_fraction();
      if (!(f > 0 && f < 1)) problem("dataset.split.random.test_fraction: must be in (0, 1), got ", f);
    } else if (split.has_given()) {
      if (split.given().test_uri().empty()) problem("dataset.split.given.test_uri: is required");
    } else {
      problem("dataset.split: random or given is required");
    }
    if (!(split.validation_fraction() >= 0 && split.validation_fraction() < 0.5)) {
      problem("dataset.split.validation_fraction: must be in [0, 0.5), got ", split.validation_fraction());
    }
  }

  // students
  std::set<std::string> names = {"primary"};
  for (int i = 0; i < spec.baselines_size(); ++i) {
    const v1::BaselineSpec& b = spec.baselines(i);
    const std::string field = strings::Cat("baselines[", i, "]");
    bool ok = !b.name().empty() && b.name().size() <= 64;
    for (char c : b.name()) ok = ok && IsNameChar(c, true, true);
    if (!ok) {
      problem(field, ".name: must be 1-64 characters of [a-z0-9_-], got \"", b.name(), "\"");
    } else if (!names.insert(b.name()).second) {
      problem(field, ".name: \"", b.name(), "\" is ", b.name() == "primary" ? "reserved for the main student" : "used twice");
    }
    if (b.objective() == v1::OBJECTIVE_UNSPECIFIED) problem(field, ".objective: is required");
    if (b.has_alpha()) {
      if (b.objective() != v1::OBJECTIVE_STEP_BY_STEP) problem(field, ".alpha: only for objective step_by_step");
      if (!(b.alpha() >= 0 && b.alpha() <= 1)) problem(field, ".alpha: must be in [0, 1], got ", b.alpha());
    }
  }
  const v1::OutputFormat format = spec.curation().format();
  if (format != v1::OUTPUT_FORMAT_UNSPECIFIED && format != FormatForObjective(spec.training().objective())) {
    problem("curation.format: ", v1::OutputFormat_Name(format), " does not fit training.objective ",
            v1::Objective_Name(spec.training().objective()), " (leave it unset to derive it)");
  }

  // teacher
  if (NeedsTeacher(spec)) {
    if (!spec.has_teacher()) {
      problem("teacher: is required unless every student uses label_source gold_only");
    } else {
      if (spec.teacher().backend().empty()) problem("teacher.backend: is required");
      if (spec.teacher().samples_per_example() < 1) {
        problem("teacher.samples_per_example: must be >= 1, got ", spec.teacher().samples_per_example());
      }
      if (spec.teacher().budget_usd() < 0) problem("teacher.budget_usd: must be >= 0, got ", spec.teacher().budget_usd());
    }
  }

  // training and student, through the trainer's own checks (their field paths are the job's too)
  {
    v1::RunSpec run;
    run.set_name("job");
    run.mutable_dataset()->set_uri("artifact://job/records.jsonl");
    *run.mutable_task() = spec.task();
    *run.mutable_student() = spec.student();
    *run.mutable_training() = spec.training();
    if (spec.dataset().split().validation_fraction() > 0) {
      run.mutable_eval()->mutable_examples()->set_uri("artifact://job/validation.jsonl");
    }
    const absl::Status trainer = trainer::ValidateRunSpec(run);
    // FAILED_PRECONDITION is about this process's build (no CUDA), which need not be the trainer's.
    if (trainer.code() == absl::StatusCode::kInvalidArgument) {
      for (absl::string_view part : absl::StrSplit(trainer.message(), "; ")) {
        // The eval set is the job's validation split.
        std::string text(part);
        if (text.rfind("eval", 0) == 0 || text.find("early_stopping") != std::string::npos) {
          if (spec.dataset().split().validation_fraction() <= 0) {
            text += " (set dataset.split.validation_fraction to evaluate during training)";
          }
        }
        problems.push_back(text);
      }
    }
  }

  if (spec.evaluation().max_examples() < 0) {
    problem("evaluation.max_examples: must be >= 0, got ", spec.evaluation().max_examples());
  }
  if (spec.has_deploy() && !spec.deploy().model_name().empty()) {
    const std::string& name = spec.deploy().model_name();
    bool ok = name.size() <= 63 && IsNameChar(name[0], false, false);
    for (char c : name) ok = ok && (IsNameChar(c, true, true) || c == '.');
    if (!ok) problem("deploy.model_name: must be 1-63 characters of [a-z0-9._-] starting with a letter or digit, got \"", name, "\"");
    if (!(spec.deploy().min_accuracy() >= 0 && spec.deploy().min_accuracy() <= 1)) {
      problem("deploy.min_accuracy: must be in [0, 1], got ", spec.deploy().min_accuracy());
    }
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(problems, "; "));
}

}  // namespace distill::coordinator
