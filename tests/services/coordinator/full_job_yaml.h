#ifndef DISTILL_TESTS_SERVICES_COORDINATOR_FULL_JOB_YAML_H_
#define DISTILL_TESTS_SERVICES_COORDINATOR_FULL_JOB_YAML_H_

// A job file with every section a job usually has (shaped like the README's demo), shared by the job-file
// parser's tests and the coordinator's validation tests.

namespace distill::testing {

inline constexpr char kFullJobYaml[] = R"(name: arith-demo
task: {name: arith, type: numeric}
dataset:
  uri: synthetic:arith?count=2000&seed=1&min_ops=1&max_ops=1
  split: {random: {seed: 7, test_fraction: 0.1}, validation_fraction: 0.05}
teacher:
  backend: synthetic
  samples_per_example: 1
  sampling: {temperature: 0.7, max_new_tokens: 256}
curation:
  label_source: gold
  filters: {max_rationale_tokens: 80}
student: {preset: mini}
training:
  objective: step_by_step
  alpha: 0.5
  hyperparameters: {learning_rate: 0.003, batch_size: 32, max_steps: 400, warmup_steps: 20, seed: 1}
  distributed: {world_size: 1, threads_per_rank: 1}
baselines:
  - {name: standard, objective: standard, label_source: gold_only}
evaluation: {max_examples: 200}
deploy: {model_name: arith, min_accuracy: 0.2}
)";

}  // namespace distill::testing

#endif  // DISTILL_TESTS_SERVICES_COORDINATOR_FULL_JOB_YAML_H_
