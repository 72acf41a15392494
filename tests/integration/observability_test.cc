// The dashboards and alert rules against real data: the all-in-one cluster (`distill up`, a real
// process) runs a tiny distillation job while Debian's Prometheus scrapes its five /metrics endpoints every
// second and evaluates deploy/prometheus/rules/*.yml. Then every PromQL expression of every panel of
// deploy/grafana/dashboards/*.json and of every rule must parse and return at least one series; an alert's
// expression `LEFT OP RIGHT` is asked as `LEFT OP bool RIGHT`, which has a series (0 or 1) for each series
// the condition compares, so a healthy cluster that fires nothing still proves the expression is wired to
// real metrics.

#include <cctype>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "distill/v1/inference.grpc.pb.h"
#include "distill/v1/jobs.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/coordinator/jobspec/job_yaml.h"
#include "tests/support/loopback_http.h"
#include "tests/support/paths.h"
#include "tests/support/ports.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "yaml-cpp/yaml.h"

namespace distill {
namespace {

using testing::Subprocess;
using json = nlohmann::json;
namespace fs = std::filesystem;

// deploy/ of the source tree; DISTILL_DEPLOY_DIR points the test at another copy (to see it fail on a
// broken one).
std::string DeployDir() {
  const char* dir = std::getenv("DISTILL_DEPLOY_DIR");
  return dir != nullptr && *dir != '\0' ? dir : ::distill::testing::SourceDir() + "/deploy";
}
const std::string kBin = ::distill::testing::BinaryDir() + "/bin/";

// A job small enough to finish in seconds that still touches every stage and every service: teacher
// samples, curation with drops, two trainer runs with evaluations and checkpoints, evaluation Predicts, a
// deploy.
constexpr char kJob[] = R"(
name: observed
task: {name: arith, type: numeric}
dataset:
  uri: synthetic:arith?count=60&seed=1&min_ops=1&max_ops=1
  split: {random: {seed: 7, test_fraction: 0.2}, validation_fraction: 0.1}
teacher: {backend: synthetic, samples_per_example: 1}
curation: {label_source: gold}
student: {preset: tiny}
training:
  objective: step_by_step
  hyperparameters: {learning_rate: 0.003, batch_size: 4, max_steps: 40, log_interval_steps: 5,
                    checkpoint_interval_steps: 10, eval_interval_steps: 20, seed: 1}
  distributed: {world_size: 1, threads_per_rank: 1}
baselines:
  - {name: standard, objective: standard, label_source: gold_only}
evaluation: {max_examples: 6}
deploy: {model_name: arith, min_accuracy: 0}
)";

std::string UrlEncode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

// Grafana's variables as Prometheus cannot read them: intervals become 1m, template variables match all.
std::string SubstituteVariables(std::string expr) {
  static const std::regex kBuiltin(R"(\$\{?__(rate_interval|interval|range)\}?)");
  static const std::regex kTemplate(R"(\$\{?[A-Za-z_][A-Za-z0-9_]*(:[a-z]+)?\}?)");
  expr = std::regex_replace(expr, kBuiltin, "1m");
  return std::regex_replace(expr, kTemplate, ".*");
}

// `LEFT OP RIGHT` → `LEFT OP bool RIGHT` for the one comparison outside parentheses, brackets, braces and
// strings; empty when there is not exactly one (the rule form the alerts must follow, see
// docs/OBSERVABILITY.md).
std::string WithBoolComparison(const std::string& expr) {
  int depth = 0;
  char quote = 0;
  std::vector<std::pair<size_t, size_t>> found;  // position, operator length
  for (size_t i = 0; i < expr.size(); ++i) {
    const char c = expr[i];
    if (quote != 0) {
      if (c == '\\') ++i;
      else if (c == quote) quote = 0;
      continue;
    }
    if (c == '"' || c == '\'' || c == '`') quote = c;
    else if (c == '(' || c == '[' || c == '{') ++depth;
    else if (c == ')' || c == ']' || c == '}') --depth;
    else if (depth == 0) {
      const std::string two = expr.substr(i, 2);
      if (two == "==" || two == "!=" || two == ">=" || two == "<=") {
        found.emplace_back(i, 2);
        ++i;
      } else if (c == '>' || c == '<') {
        found.emplace_back(i, 1);
      }
    }
  }
  if (found.size() != 1) return "";
  const size_t end = found[0].first + found[0].second;
  return absl::StrCat(expr.substr(0, end), " bool", expr.substr(end));
}

TEST(WithBoolComparisonTest, RewritesTheOneTopLevelComparison) {
  EXPECT_EQ(WithBoolComparison("rate(x[5m]) > 0.5"), "rate(x[5m]) > bool 0.5");
  EXPECT_EQ(WithBoolComparison("a{b=~\"c>d\"} >= on(x) (y < 2)"), "a{b=~\"c>d\"} >= bool on(x) (y < 2)");
  EXPECT_EQ(WithBoolComparison("sum(x) / sum(y)"), "");
  EXPECT_EQ(WithBoolComparison("x > 1 and y < 2"), "");
}

TEST(SubstituteVariablesTest, ReplacesGrafanaVariables) {
  EXPECT_EQ(SubstituteVariables("rate(x{model=~\"$model\"}[$__rate_interval])"), "rate(x{model=~\".*\"}[1m])");
  EXPECT_EQ(SubstituteVariables("increase(x[${__range}]) by ${backend}"), "increase(x[1m]) by .*");
}

class ObservabilityTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (prometheus_ != nullptr) {
      prometheus_->Signal(SIGTERM);
      (void)prometheus_->Wait(absl::Seconds(20));
    }
    if (cluster_ != nullptr) {
      cluster_->Signal(SIGTERM);
      (void)cluster_->Wait(absl::Seconds(30));
    }
  }

  // Keeps the children's pipes from filling up while the test waits.
  void Pump() {
    for (Subprocess* p : {cluster_.get(), prometheus_.get()}) {
      if (p != nullptr) (void)p->ReadLine(absl::Milliseconds(1));
    }
  }

  void Sleep(absl::Duration d) {
    const absl::Time until = absl::Now() + d;
    while (absl::Now() < until) {
      Pump();
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

  // Starts `distill up` in its own directory (it keeps its data under ./distill-data) and reads the
  // five listening lines.
  void StartCluster() {
    const std::string dir = temp_.path() + "/cluster";
    fs::create_directories(dir);
    auto process = Subprocess::Start({"/bin/sh", "-c", absl::StrCat("cd '", dir, "' && exec '", kBin, "distill' up")});
    ASSERT_TRUE(process.ok()) << process.status();
    cluster_ = std::move(*process);
    static const std::regex kLine("^listening service=([a-z_]+) grpc=(\\S+) metrics=(\\S+).*$");
    for (int i = 0; i < 5; ++i) {
      absl::StatusOr<std::string> line = cluster_->ReadLine(absl::Seconds(60));
      ASSERT_TRUE(line.ok()) << line.status() << "\n" << cluster_->Stderr();
      std::smatch m;
      ASSERT_TRUE(std::regex_match(*line, m, kLine)) << *line;
      grpc_[m[1]] = m[2];
      metrics_[m[1]] = m[3];
    }
  }

  // Debian's Prometheus on loopback: scrapes every service each second, evaluates the project's rules.
  void StartPrometheus() {
    std::string config = absl::StrCat(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: ['",
        DeployDir(), "/prometheus/rules/*.yml']\n", "scrape_configs:\n");
    for (const auto& [service, address] : metrics_) {
      absl::StrAppend(&config, "  - job_name: ", service, "\n    static_configs: [{targets: ['", address,
                      "'], labels: {service: ", service, "}}]\n");
    }
    const std::string path = temp_.File("prometheus.yml");
    std::ofstream(path) << config;
    prometheus_address_ = absl::StrCat("127.0.0.1:", testing::FreeLoopbackPort());
    auto process = Subprocess::Start({"/usr/bin/prometheus", "--config.file=" + path,
                                      "--storage.tsdb.path=" + temp_.path() + "/tsdb",
                                      "--web.listen-address=" + prometheus_address_, "--log.level=warn"});
    ASSERT_TRUE(process.ok()) << process.status();
    prometheus_ = std::move(*process);
    const absl::Time until = absl::Now() + absl::Seconds(60);
    while (absl::Now() < until) {
      httplib::Result ready = testing::HttpGet(prometheus_address_, "/-/ready");
      if (ready && ready->status == 200) return;
      Sleep(absl::Milliseconds(200));
    }
    FAIL() << "Prometheus did not become ready\n" << prometheus_->Stderr();
  }

  // /api/v1/query: the parsed response, or an object with "error" set.
  json Query(const std::string& promql) {
    httplib::Result result = testing::HttpGet(prometheus_address_, "/api/v1/query?query=" + UrlEncode(promql));
    if (!result) return json{{"error", "no HTTP response"}};
    json body = json::parse(result->body, nullptr, false);
    if (body.is_discarded()) return json{{"error", "not JSON: " + result->body}};
    if (body.value("status", "") != "success") return json{{"error", body.value("error", result->body)}};
    return body;
  }

  // Problems with `promql`: a parse or evaluation error, or no series.
  std::string Check(const std::string& where, const std::string& promql) {
    json response = Query(promql);
    if (response.contains("error")) return absl::StrCat(where, ": ", promql, ": ", response["error"].dump());
    const json& result = response["data"]["result"];
    if (result.is_array() && result.empty()) return absl::StrCat(where, ": ", promql, ": no series");
    return "";
  }

  // Every panel target of every dashboard, every rule: what fails now.
  std::vector<std::string> CheckAllExpressions(int* checked) {
    std::vector<std::string> problems;
    *checked = 0;
    auto note = [&](const std::string& problem) {
      ++*checked;
      if (!problem.empty()) problems.push_back(problem);
    };
    for (const fs::directory_entry& file : fs::directory_iterator(DeployDir() + "/grafana/dashboards")) {
      if (file.path().extension() != ".json") continue;
      std::ifstream in(file.path());
      json dashboard = json::parse(in);
      std::vector<const json*> panels;
      std::function<void(const json&)> collect = [&](const json& list) {
        for (const json& panel : list) {
          panels.push_back(&panel);
          if (panel.contains("panels")) collect(panel["panels"]);
        }
      };
      collect(dashboard["panels"]);
      for (const json* panel : panels) {
        if (!panel->contains("targets")) continue;
        for (const json& target : (*panel)["targets"]) {
          if (!target.contains("expr")) continue;
          const std::string where = absl::StrCat(file.path().filename().string(), " panel \"",
                                                 panel->value("title", "?"), "\"");
          note(Check(where, SubstituteVariables(target["expr"].get<std::string>())));
        }
      }
    }
    for (const fs::directory_entry& file : fs::directory_iterator(DeployDir() + "/prometheus/rules")) {
      if (file.path().extension() != ".yml") continue;
      YAML::Node rules = YAML::LoadFile(file.path().string());
      for (const YAML::Node& group : rules["groups"]) {
        for (const YAML::Node& rule : group["rules"]) {
          const std::string expr = rule["expr"].as<std::string>();
          const std::string where = absl::StrCat(file.path().filename().string(), " ",
                                                 rule["record"] ? "record " + rule["record"].as<std::string>()
                                                                : "alert " + rule["alert"].as<std::string>());
          if (rule["record"]) {
            note(Check(where, expr));
            // And what Prometheus recorded from it.
            note(Check(where + " (recorded)", rule["record"].as<std::string>()));
          } else {
            const std::string with_bool = WithBoolComparison(expr);
            note(with_bool.empty() ? absl::StrCat(where, ": not of the form LEFT OP RIGHT: ", expr)
                                   : Check(where, with_bool));
          }
        }
      }
    }
    return problems;
  }

  testing::TempDir temp_{"observability"};
  std::unique_ptr<Subprocess> cluster_;
  std::unique_ptr<Subprocess> prometheus_;
  std::map<std::string, std::string> grpc_;
  std::map<std::string, std::string> metrics_;
  std::string prometheus_address_;
};

TEST_F(ObservabilityTest, EveryPanelAndRuleReturnsSeriesWhileATinyJobRuns) {
  StartCluster();
  if (HasFatalFailure()) return;
  ASSERT_EQ(metrics_.size(), 5u);
  StartPrometheus();
  if (HasFatalFailure()) return;

  // Every rule file loaded, every target up.
  json rules = json::parse(testing::HttpGet(prometheus_address_, "/api/v1/rules")->body);
  ASSERT_FALSE(rules["data"]["groups"].empty()) << rules.dump();
  const absl::Time until_up = absl::Now() + absl::Seconds(30);
  while (absl::Now() < until_up && Query("count(up == 1)")["data"]["result"].dump().find("\"5\"") == std::string::npos) {
    Sleep(absl::Milliseconds(200));
  }
  EXPECT_NE(Query("count(up == 1)")["data"]["result"].dump().find("\"5\""), std::string::npos)
      << Query("up").dump();

  // The job, submitted as distillctl would, watched until it ends.
  absl::StatusOr<v1::JobSpec> spec = jobs::ParseJobSpecYaml(kJob, "observed.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto jobs = v1::DistillationJobs::NewStub(grpc::CreateChannel(grpc_["coordinator"], grpc::InsecureChannelCredentials()));
  v1::SubmitJobRequest submit;
  submit.set_client_request_id("observability-test");
  *submit.mutable_spec() = *spec;
  v1::SubmitJobResponse submitted;
  {
    grpc::ClientContext call;
    call.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status status = jobs->SubmitJob(&call, submit, &submitted);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  v1::Job job;
  const absl::Time until_done = absl::Now() + absl::Minutes(3);
  while (absl::Now() < until_done) {
    grpc::ClientContext call;
    v1::GetJobRequest get;
    get.set_job_id(submitted.job().job_id());
    v1::GetJobResponse got;
    if (jobs->GetJob(&call, get, &got).ok()) job = got.job();
    if (job.state() == v1::JOB_STATE_SUCCEEDED || job.state() == v1::JOB_STATE_FAILED ||
        job.state() == v1::JOB_STATE_CANCELLED) {
      break;
    }
    Sleep(absl::Milliseconds(100));
  }
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.failure_cause();

  // Traffic to the deployed student, as users send it.
  auto inference = v1::Inference::NewStub(grpc::CreateChannel(grpc_["inference"], grpc::InsecureChannelCredentials()));
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext call;
    v1::PredictRequest predict;
    predict.set_model("arith");
    predict.set_input(absl::StrCat("Tom has ", i + 2, " apples and buys 3 more. How many apples does he have?"));
    v1::PredictResponse answer;
    grpc::Status status = inference->Predict(&call, predict, &answer);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
  inference.reset();
  jobs.reset();

  // Prometheus saw the job while it ran, not only its end.
  const absl::Time until_seen = absl::Now() + absl::Seconds(30);
  auto seen_finished = [&] {
    return Query("distill_coordinator_jobs_finished_total{state=\"succeeded\"} == 1")["data"]["result"].size() == 1;
  };
  while (absl::Now() < until_seen && !seen_finished()) Sleep(absl::Milliseconds(250));
  ASSERT_TRUE(seen_finished()) << Query("distill_coordinator_jobs_finished_total").dump();
  EXPECT_EQ(Query("max_over_time(distill_coordinator_jobs{state=\"running\"}[5m]) == 1")["data"]["result"].size(), 1u)
      << "no scrape saw the job running";
  EXPECT_EQ(Query("max_over_time(distill_trainer_runs{state=\"running\"}[5m]) >= 1")["data"]["result"].size(), 1u)
      << "no scrape saw a training run";

  // Every expression: rules need a few evaluations after the last samples, so the check is retried
  // until it passes or 30 s have gone by; the problems of the last attempt are reported.
  std::vector<std::string> problems;
  int checked = 0;
  const absl::Time until_checked = absl::Now() + absl::Seconds(30);
  do {
    problems = CheckAllExpressions(&checked);
    if (problems.empty()) break;
    Sleep(absl::Seconds(1));
  } while (absl::Now() < until_checked);
  std::cout << checked << " expressions checked\n";
  EXPECT_GE(checked, 40) << "fewer expressions than the dashboards and rules hold";
  EXPECT_TRUE(problems.empty()) << problems.size() << " of " << checked << " expressions fail:\n"
                                << absl::StrJoin(problems, "\n");

  // Rule evaluation itself reported no errors.
  rules = json::parse(testing::HttpGet(prometheus_address_, "/api/v1/rules")->body);
  for (const json& group : rules["data"]["groups"]) {
    for (const json& rule : group["rules"]) {
      EXPECT_EQ(rule.value("health", ""), "ok") << rule.dump();
    }
  }
}

}  // namespace
}  // namespace distill
