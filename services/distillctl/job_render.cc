#include "services/distillctl/job_render.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/clock/timestamp.h"
#include "common/strings/strings.h"
#include "services/coordinator/jobspec/job_yaml.h"

namespace distill::ctl {
namespace {

using strings::Append;
using strings::Cat;

constexpr int kBarWidth = 24;

// Lower-case enum value without its prefix ("wrong_answer"); "-" for an unset value.
template <typename E>
std::string Short(E value) {
  return static_cast<int>(value) == 0 ? "-" : jobs::ShortName(value);
}

bool Terminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}


// Seconds from `start` to `end`; nullopt when `start` is unset. An unset `end` means `now`.
std::optional<double> Elapsed(bool has_start, const google::protobuf::Timestamp& start, bool has_end,
                              const google::protobuf::Timestamp& end, absl::Time now) {
  if (!has_start) return std::nullopt;
  const absl::Time until = has_end ? FromTimestamp(end) : now;
  return std::max(0.0, absl::ToDoubleSeconds(until - FromTimestamp(start)));
}

std::optional<double> JobDuration(const v1::Job& job, absl::Time now) {
  if (Terminal(job.state()) && job.report().duration_seconds() > 0) return job.report().duration_seconds();
  return Elapsed(job.has_start_time(), job.start_time(), job.has_end_time(), job.end_time(), now);
}

// `text` in an ANSI SGR colour (as is without `color`), then padded with spaces to `width` columns.
std::string Paint(std::string_view text, std::string_view sgr, bool color, size_t width = 0) {
  std::string out = color ? Cat("\x1b[", sgr, "m", text, "\x1b[0m") : std::string(text);
  if (text.size() < width) out.append(width - text.size(), ' ');
  return out;
}

std::string_view StageStateColor(v1::StageState state) {
  switch (state) {
    case v1::STAGE_STATE_RUNNING:
      return "1;33";
    case v1::STAGE_STATE_SUCCEEDED:
      return "32";
    case v1::STAGE_STATE_FAILED:
      return "1;31";
    case v1::STAGE_STATE_CANCELLED:
      return "35";
    default:
      return "2";
  }
}

std::string_view JobStateColor(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_RUNNING:
    case v1::JOB_STATE_CANCELLING:
      return "1;33";
    case v1::JOB_STATE_SUCCEEDED:
      return "1;32";
    case v1::JOB_STATE_FAILED:
      return "1;31";
    case v1::JOB_STATE_CANCELLED:
      return "1;35";
    default:
      return "2";
  }
}

std::string Pad(std::string text, size_t width) {
  if (text.size() < width) text.resize(width, ' ');
  return text;
}

// What a stage's done/total count.
std::string_view StageUnit(v1::Stage stage) {
  switch (stage) {
    case v1::STAGE_LOAD_DATASET:
      return "rows";
    case v1::STAGE_TEACH:
    case v1::STAGE_CURATE:
    case v1::STAGE_EVALUATE:
      return "examples";
    case v1::STAGE_TRAIN:
      return "steps";
    default:
      return "";
  }
}

std::string Bar(int64_t done, int64_t total) {
  if (total <= 0) return Cat("[", std::string(kBarWidth, ' '), "]");
  const double fraction = std::clamp(static_cast<double>(done) / static_cast<double>(total), 0.0, 1.0);
  const int filled = static_cast<int>(fraction * kBarWidth);
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < kBarWidth) bar += '>';
  bar.resize(kBarWidth, ' ');
  return Cat("[", bar, "]");
}

// "120/400 steps"; "120 steps" while the total is unknown; empty for DEPLOY, whose count is 0 or 1.
std::string Count(const v1::StageStatus& stage) {
  const std::string_view unit = StageUnit(stage.stage());
  if (unit.empty()) return "";
  if (stage.total() > 0) return Cat(stage.done(), "/", stage.total(), " ", unit);
  return Cat(stage.done(), " ", unit);
}

std::string CodeName(int code) { return absl::StatusCodeToString(static_cast<absl::StatusCode>(code)); }

std::optional<double> TotalLoss(const v1::StepProgress& progress) {
  for (const v1::TaskLoss& loss : progress.losses()) {
    if (loss.task() == v1::LOSS_TASK_TOTAL) return loss.loss();
  }
  return std::nullopt;
}

// "60.5M", "950k", "512".
std::string HumanCount(int64_t n) {
  if (n >= 1000000000) return absl::StrFormat("%.2fB", static_cast<double>(n) / 1e9);
  if (n >= 1000000) return absl::StrFormat("%.1fM", static_cast<double>(n) / 1e6);
  if (n >= 10000) return absl::StrFormat("%.0fk", static_cast<double>(n) / 1e3);
  return Cat(n);
}

// The students' results: the report's once filled in, else EVALUATE's results so far.
const google::protobuf::RepeatedPtrField<v1::StudentResult>& StudentResults(const v1::Job& job) {
  if (!job.report().students().empty()) return job.report().students();
  for (const v1::StageStatus& stage : job.stages()) {
    if (stage.has_evaluate()) return stage.evaluate().students();
  }
  return job.report().students();
}

// The approach a student stands for, as the distillation literature names it.
std::string Approach(const v1::StudentResult& student) {
  switch (student.objective()) {
    case v1::OBJECTIVE_STEP_BY_STEP:
      return "distilling step-by-step";
    case v1::OBJECTIVE_COT_SEQUENCE:
      return "fine-tune-CoT";
    case v1::OBJECTIVE_STANDARD:
      // Labels that are the dataset's gold answers (on every example, or on those the curator kept) make
      // it fine-tuning; labels voted from the teacher's answers make it standard distillation.
      return student.label_source() == v1::LABEL_SOURCE_GOLD_ONLY || student.label_source() == v1::LABEL_SOURCE_GOLD
                 ? "standard fine-tuning"
                 : "standard distillation";
    default:
      return student.student();
  }
}

// The primary student's comparison with one baseline. Says "beat" only when the primary's accuracy is
// strictly higher and the percentages shown differ; otherwise "did not beat".
std::string Conclusion(const v1::StudentResult& primary, const v1::StudentResult& baseline) {
  bool better;
  if (primary.examples() == baseline.examples() && primary.examples() > 0) {
    better = primary.correct() > baseline.correct();
  } else {
    better = primary.test_accuracy() > baseline.test_accuracy();
  }
  std::string ours = FormatPercent(primary.test_accuracy());
  std::string theirs = FormatPercent(baseline.test_accuracy());
  if (ours == theirs && primary.test_accuracy() != baseline.test_accuracy()) {
    ours = absl::StrFormat("%.2f%%", primary.test_accuracy() * 100);
    theirs = absl::StrFormat("%.2f%%", baseline.test_accuracy() * 100);
  }
  if (ours == theirs) better = false;
  std::string us = Approach(primary);
  std::string them = Approach(baseline);
  if (us == them) {
    us = primary.student();
    them = baseline.student();
  } else {
    Append(&them, " (", baseline.student(), ")");
  }
  return Cat(us, better ? " beat " : " did not beat ", them, ": ", ours, " vs ", theirs, " test accuracy");
}

// A table with left-aligned columns separated by two spaces.
std::string Table(const std::vector<std::vector<std::string>>& rows, std::string_view indent) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line(indent);
    for (size_t i = 0; i < row.size(); ++i) {
      Append(&line, i + 1 < row.size() ? Pad(row[i], widths[i] + 2) : row[i]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    Append(&out, line, "\n");
  }
  return out;
}

void AppendStageDetails(const v1::StageStatus& stage, std::string* out) {
  switch (stage.details_case()) {
    case v1::StageStatus::kTeach: {
      const v1::TeachDetails& t = stage.teach();
      std::string line = Cat("      samples ", t.samples_received());
      if (t.samples_from_cache() > 0) Append(&line, " (", t.samples_from_cache(), " cached)");
      Append(&line, ", failed examples ", t.examples_failed());
      std::vector<std::string> reasons;
      for (const v1::ExampleErrorCount& e : t.errors_by_reason()) {
        reasons.push_back(Cat(Short(e.reason()), " ", e.count()));
      }
      if (!reasons.empty()) Append(&line, " (", absl::StrJoin(reasons, ", "), ")");
      if (t.usage().cost_usd() > 0) Append(&line, absl::StrFormat(", cost $%.2f", t.usage().cost_usd()));
      Append(out, line, "\n");
      break;
    }
    case v1::StageStatus::kCurate:
      for (const v1::CuratedDataset& d : stage.curate().datasets()) {
        Append(out, "      ", absl::StrJoin(d.students(), ","), ": ", Short(d.format()), ", kept ",
               d.summary().kept(), ", dropped ", d.summary().dropped(), "\n");
      }
      break;
    case v1::StageStatus::kTrain: {
      std::vector<std::vector<std::string>> rows;
      for (const v1::StudentRun& r : stage.train().runs()) {
        const v1::Run& run = r.run();
        std::vector<std::string> row = {r.student()};
        if (run.has_progress()) {
          row.push_back(Cat("step ", run.progress().step(), "/", run.progress().total_steps()));
          const std::optional<double> loss = TotalLoss(run.progress());
          row.push_back(loss.has_value() ? absl::StrFormat("loss %.4f", *loss) : "loss -");
        } else {
          row.push_back(Short(run.state()));
          row.push_back("");
        }
        row.push_back(run.has_best_eval() ? Cat("best acc ", FormatPercent(run.best_eval().accuracy())) : "");
        if (run.state() == v1::RUN_STATE_FAILED || run.state() == v1::RUN_STATE_CANCELLED) {
          row.push_back(Cat(Short(run.state()), ": ", run.failure_cause()));
        }
        rows.push_back(std::move(row));
      }
      Append(out, Table(rows, "      "));
      break;
    }
    case v1::StageStatus::kEvaluate: {
      const v1::EvaluateDetails& e = stage.evaluate();
      std::vector<std::vector<std::string>> rows;
      for (const v1::StudentResult& s : e.students()) {
        std::string examples = Cat(s.examples());
        if (e.examples_total() > 0) Append(&examples, "/", e.examples_total());
        rows.push_back({s.student(), Cat("acc ", s.examples() > 0 ? FormatPercent(s.test_accuracy()) : "-"),
                        Cat("(", s.correct(), "/", s.examples(), " correct)"), Cat(examples, " examples")});
      }
      if (e.has_teacher_accuracy())
        rows.push_back({"teacher", Cat("acc ", FormatPercent(e.teacher_accuracy()))});
      Append(out, Table(rows, "      "));
      break;
    }
    default:
      break;
  }
}

}  // namespace

std::string FormatPercent(double ratio) { return absl::StrFormat("%.1f%%", ratio * 100); }

std::string FormatSeconds(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "?";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
  if (s >= 60) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%ds", s);
}

std::string StageName(v1::Stage stage) { return absl::AsciiStrToUpper(Short(stage)); }

std::string RenderJobProgress(const v1::Job& job, bool color, absl::Time now) {
  std::string header = Cat("job ", job.job_id());
  if (!job.spec().name().empty()) Append(&header, " (", job.spec().name(), ")");
  Append(&header, "  ", Paint(Short(job.state()), JobStateColor(job.state()), color));
  if (const std::optional<double> elapsed = JobDuration(job, now))
    Append(&header, "  ", FormatSeconds(*elapsed));
  std::string out = Cat(header, "\n");

  for (const v1::StageStatus& stage : job.stages()) {
    std::string line = Cat("  ", Pad(StageName(stage.stage()), 14),
                           Paint(Short(stage.state()), StageStateColor(stage.state()), color, 11));
    const bool started = stage.state() != v1::STAGE_STATE_PENDING && stage.state() != v1::STAGE_STATE_SKIPPED;
    if (started && !StageUnit(stage.stage()).empty()) {
      Append(&line, Bar(stage.done(), stage.total()), " ", Pad(Count(stage), 18));
    }
    if (stage.state() == v1::STAGE_STATE_RUNNING) {
      Append(&line, Pad(stage.eta_seconds() > 0 ? Cat("eta ", FormatSeconds(stage.eta_seconds())) : "", 10));
    } else if (const std::optional<double> took = Elapsed(stage.has_start_time(), stage.start_time(),
                                                          stage.has_end_time(), stage.end_time(), now);
               took.has_value() && stage.has_end_time()) {
      Append(&line, Pad(Cat("in ", FormatSeconds(*took)), 10));
    }
    if (!stage.message().empty()) Append(&line, stage.message());
    if (stage.state() == v1::STAGE_STATE_FAILED && stage.error_code() != 0) {
      Append(&line, " (", CodeName(stage.error_code()), ")");
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    Append(&out, line, "\n");
    if (started) AppendStageDetails(stage, &out);
  }
  if (!job.failure_cause().empty()) Append(&out, "  ", Paint(job.failure_cause(), "31", color), "\n");
  return out;
}

std::string RenderJobSummary(const v1::Job& job) {
  const v1::JobReport& report = job.report();
  std::string out = Cat("job ", job.job_id());
  if (!job.spec().name().empty()) Append(&out, " (", job.spec().name(), ")");
  Append(&out, ": ", Short(job.state()));
  if (report.duration_seconds() > 0) {
    Append(&out, " in ", FormatSeconds(report.duration_seconds()));
  } else if (job.has_start_time() && job.has_end_time()) {
    Append(&out, " in ",
           FormatSeconds(absl::ToDoubleSeconds(FromTimestamp(job.end_time()) - FromTimestamp(job.start_time()))));
  }
  Append(&out, "\n");

  // Whether the teacher took part (TEACH is SKIPPED when every student learns from gold labels only).
  bool teacher_used = true;
  for (const v1::StageStatus& stage : job.stages()) {
    if (stage.stage() == v1::STAGE_TEACH && stage.state() == v1::STAGE_STATE_SKIPPED) teacher_used = false;
  }
  const v1::CurationSummary& curation = report.curation();
  const bool teacher_measured = curation.examples_with_gold() > 0 || report.teacher_train_accuracy() > 0 ||
                                report.has_teacher_test_accuracy();
  if (teacher_used && teacher_measured) {
    std::string line = Cat("teacher accuracy: train ", FormatPercent(report.teacher_train_accuracy()));
    if (curation.examples_with_gold() > 0) {
      Append(&line, " (", curation.examples_teacher_correct(), "/", curation.examples_with_gold(), ")");
    }
    if (report.has_teacher_test_accuracy()) {
      Append(&line, ", test ", FormatPercent(report.teacher_test_accuracy()));
    } else {
      Append(&line, ", test not measured");
    }
    Append(&out, line, "\n");
    const v1::Usage& usage = report.teacher_usage();
    if (usage.prompt_tokens() > 0 || usage.completion_tokens() > 0 || usage.cost_usd() > 0) {
      Append(&out, "teacher usage: ", usage.prompt_tokens(), " prompt + ", usage.completion_tokens(),
             " completion tokens",
             usage.cost_usd() > 0 ? absl::StrFormat(", est. $%.2f", usage.cost_usd()) : "", "\n");
    }
  } else if (!teacher_used) {
    Append(&out, "teacher: not used (gold labels only)\n");
  }
  if (curation.received() > 0) {
    std::string line = Cat("curation: kept ", curation.kept(), " of ", curation.received(),
                           " candidates, dropped ", curation.dropped());
    std::vector<std::string> reasons;
    for (const v1::DropCount& drop : curation.dropped_by_reason()) {
      reasons.push_back(Cat(Short(drop.reason()), " ", drop.count()));
    }
    if (!reasons.empty()) Append(&line, " (", absl::StrJoin(reasons, ", "), ")");
    Append(&out, line, "\n");
  }

  const auto& students = StudentResults(job);
  if (!students.empty()) {
    std::vector<std::vector<std::string>> rows = {
        {"student", "objective", "labels", "test acc", "correct", "params", "size MB", "mean ms", "p99 ms"}};
    for (const v1::StudentResult& s : students) {
      rows.push_back(
          {s.student(), Short(s.objective()), Short(s.label_source()),
           s.examples() > 0 ? FormatPercent(s.test_accuracy()) : "-", Cat(s.correct(), "/", s.examples()),
           s.parameters() > 0 ? HumanCount(s.parameters()) : "-",
           s.size_bytes() > 0 ? absl::StrFormat("%.1f", static_cast<double>(s.size_bytes()) / 1e6) : "-",
           absl::StrFormat("%.1f", s.mean_latency_seconds() * 1e3),
           absl::StrFormat("%.1f", s.p99_latency_seconds() * 1e3)});
    }
    Append(&out, "\n", Table(rows, "  "), "\n");
    const v1::StudentResult* primary = nullptr;
    for (const v1::StudentResult& s : students) {
      if (s.student() == "primary") primary = &s;
    }
    if (primary != nullptr && primary->examples() > 0) {
      for (const v1::StudentResult& s : students) {
        if (&s != primary && s.examples() > 0) Append(&out, Conclusion(*primary, s), "\n");
      }
    }
  }

  if (report.verdict() != v1::VERDICT_UNSPECIFIED) {
    Append(&out, "verdict: ", Short(report.verdict()));
    if (!report.verdict_message().empty()) Append(&out, ": ", report.verdict_message());
    Append(&out, "\n");
  }
  if (job.state() == v1::JOB_STATE_FAILED || job.state() == v1::JOB_STATE_CANCELLED) {
    Append(&out, Short(job.state()), ": ",
           job.failure_cause().empty() ? "no cause recorded" : job.failure_cause());
    if (job.failure_code() != 0) Append(&out, " (", CodeName(job.failure_code()), ")");
    Append(&out, "\n");
  }
  return out;
}

std::string RenderJobLineHeader() {
  return absl::StrFormat("%-24s %-20s %-10s %-12s %-8s %s", "JOB", "NAME", "STATE", "STAGE", "TIME",
                         "ACCURACY");
}

std::string RenderJobLine(const v1::Job& job, absl::Time now) {
  const std::optional<double> duration = JobDuration(job, now);
  std::string accuracy = "-";
  for (const v1::StudentResult& s : StudentResults(job)) {
    if (s.student() == "primary" && s.examples() > 0) accuracy = FormatPercent(s.test_accuracy());
  }
  return absl::StrFormat("%-24s %-20s %-10s %-12s %-8s %s", job.job_id(), job.spec().name(),
                         Short(job.state()),
                         job.current_stage() == v1::STAGE_UNSPECIFIED ? "-" : StageName(job.current_stage()),
                         duration.has_value() ? FormatSeconds(*duration) : "-", accuracy);
}

std::string RenderStageEvent(const v1::StageStatus& stage) {
  std::string line = Cat(StageName(stage.stage()), " ", Short(stage.state()));
  if (stage.state() != v1::STAGE_STATE_PENDING && stage.state() != v1::STAGE_STATE_SKIPPED &&
      stage.state() != v1::STAGE_STATE_FAILED) {
    const std::string count = Count(stage);
    if (!count.empty()) Append(&line, " ", count);
  }
  if (stage.state() == v1::STAGE_STATE_RUNNING && stage.eta_seconds() > 0) {
    Append(&line, " eta ", FormatSeconds(stage.eta_seconds()));
  }
  if (stage.has_start_time() && stage.has_end_time()) {
    Append(&line, " in ",
           FormatSeconds(absl::ToDoubleSeconds(FromTimestamp(stage.end_time()) - FromTimestamp(stage.start_time()))));
  }
  if (!stage.message().empty()) Append(&line, ": ", stage.message());
  if (stage.state() == v1::STAGE_STATE_FAILED && stage.error_code() != 0) {
    Append(&line, " (", CodeName(stage.error_code()), ")");
  }
  return line;
}

}  // namespace distill::ctl
