#include "services/distill/run_command.h"

#include <algorithm>
#include <atomic>
#include <iostream>
#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "common/cli/flags.h"
#include "common/rpc/signals.h"
#include "common/rpc/status.h"
#include "common/strings/strings.h"
#include "distill/v1/jobs.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "services/coordinator/jobspec/job_yaml.h"
#include "services/distill/cluster.h"
#include "services/distillctl/ctl_commands.h"

namespace distill::services {

int RunJob(const std::vector<std::string>& args) {
  bool exit_after = false;
  int concurrent_runs = 0;
  cli::FlagSet flags("distill run JOB.yaml [--exit] [--concurrent-runs N]");
  flags.Bool("exit", &exit_after, "exit when the job ends instead of serving the student until Ctrl-C");
  flags.Int("concurrent-runs", &concurrent_runs,
            "students trained at once; 0 = as many as fit this machine's cores at the job's "
            "training.distributed.threads_per_rank x world_size (1 when threads_per_rank is 0)");
  absl::StatusOr<std::vector<std::string>> positional = flags.Parse(args);
  if (flags.help_requested()) {
    std::cout << flags.Usage();
    return 0;
  }
  if (positional.ok() && positional->size() != 1) {
    positional = absl::InvalidArgumentError("expected exactly one job file");
  }
  if (positional.ok() && concurrent_runs < 0) positional = absl::InvalidArgumentError("--concurrent-runs: must be >= 0");
  if (!positional.ok()) {
    std::cerr << "distill run: " << positional.status().message() << "\n" << flags.Usage();
    return 2;
  }
  absl::StatusOr<v1::JobSpec> spec = jobs::LoadJobSpecFile((*positional)[0]);
  if (!spec.ok()) {
    std::cerr << "distill run: " << spec.status().message() << "\n";
    return 2;
  }
  if (concurrent_runs == 0) {
    // Each student's run takes threads_per_rank x world_size cores; 0 threads means "all of them".
    const v1::DistributedOptions& d = spec->training().distributed();
    const int per_run = d.threads_per_rank() * std::max(1, d.world_size());
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    concurrent_runs = per_run > 0 ? std::clamp(cores / per_run, 1, 1 + spec->baselines_size()) : 1;
  }
  absl::StatusOr<std::unique_ptr<Cluster>> cluster =
      Cluster::Start(ClusterOptions{.host = "127.0.0.1", .trainer_max_concurrent_runs = concurrent_runs});
  if (!cluster.ok()) {
    std::cerr << "distill run: " << cluster.status().message() << "\n";
    return 3;
  }
  const std::string coordinator = DialAddress((*cluster)->server("coordinator")->grpc_address());
  std::unique_ptr<v1::DistillationJobs::Stub> jobs =
      v1::DistillationJobs::NewStub(grpc::CreateChannel(coordinator, grpc::InsecureChannelCredentials()));
  v1::SubmitJobRequest request;
  request.set_client_request_id(ctl::NewRequestId());
  *request.mutable_spec() = *spec;
  v1::SubmitJobResponse submitted;
  {
    grpc::ClientContext call;
    const grpc::Status status = jobs->SubmitJob(&call, request, &submitted);
    if (!status.ok()) {
      std::cerr << "distill run: the job was rejected: " << status.error_message() << "\n";
      jobs.reset();
      (*cluster)->Shutdown();
      return 3;
    }
  }
  const std::string job_id = submitted.job().job_id();
  std::cout << "job " << job_id << " submitted (" << spec->name() << "); Ctrl-C cancels it\n" << std::flush;

  // Signals are blocked in every thread (main calls BlockShutdownSignals); this one receives them.
  std::atomic<bool> job_over{false};
  absl::Notification stop_serving;
  std::thread signals([&] {
    rpc::WaitForShutdownSignal();
    if (!job_over.load()) {
      std::cerr << "\ncancelling " << job_id << "...\n";
      v1::CancelJobRequest cancel;
      cancel.set_job_id(job_id);
      v1::CancelJobResponse cancelled;
      grpc::ClientContext call;
      (void)jobs->CancelJob(&call, cancel, &cancelled);
    }
    if (!stop_serving.HasBeenNotified()) stop_serving.Notify();
  });
  signals.detach();

  const int code = ctl::RunDistillctl({"--address", coordinator, "watch", job_id}, std::cout, std::cerr);
  job_over.store(true);
  if (code == ctl::kExitOk && !exit_after) {
    const rpc::Server* inference = (*cluster)->server("inference");
    std::cout << "\nThe cluster keeps running (Ctrl-C stops it):\n";
    for (const auto& server : (*cluster)->servers()) std::cout << "  " << server->ListeningLine() << "\n";
    if (spec->has_deploy() && !spec->deploy().model_name().empty()) {
      std::cout << "Ask the student:\n  distillctl --inference-address " << DialAddress(inference->grpc_address())
                << " predict --model " << spec->deploy().model_name() << " \"<a question>\"\n";
    }
    std::cout << std::flush;
    stop_serving.WaitForNotification();
  }
  jobs.reset();
  (*cluster)->Shutdown();
  return code == ctl::kExitOk ? 0 : (code == ctl::kExitJobFailed ? 1 : 3);
}

}  // namespace distill::services
