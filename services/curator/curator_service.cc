#include "services/curator/curator_service.h"

#include <filesystem>
#include <fstream>
#include <memory>

#include "common/artifacts/artifacts.h"
#include "common/hash/sha256.h"
#include "common/metrics/builder.h"
#include "common/rpc/service_module.h"
#include "common/status/macros.h"
#include "common/strings/strings.h"
#include "google/protobuf/util/json_util.h"
#include "services/curator/curation.h"
#include "services/curator/dataset.h"

namespace distill::services {

CuratorService::CuratorService(rpc::CallGuard guard, CuratorConfig config, metrics::Registry* registry)
    : guard_(guard),
      config_(std::move(config)),
      received_(metrics::BuildCounter()
                    .Name("distill_curator_samples_received_total")
                    .Help("Teacher samples (candidate records) received by finished curations.")
                    .Register(*registry)
                    .Add({})),
      kept_(metrics::BuildCounter()
                .Name("distill_curator_samples_kept_total")
                .Help("Samples turned into training records.")
                .Register(*registry)
                .Add({})),
      dropped_(metrics::BuildCounter()
                   .Name("distill_curator_samples_dropped_total")
                   .Help("Samples dropped, by reason.")
                   .Register(*registry)),
      examples_(metrics::BuildCounter()
                    .Name("distill_curator_examples_total")
                    .Help("Examples received by finished curations.")
                    .Register(*registry)
                    .Add({})),
      teacher_accuracy_(
          metrics::BuildGauge()
              .Name("distill_curator_teacher_accuracy_ratio")
              .Help("Teacher accuracy (first sample vs gold) of the last finished curation with gold.")
              .Register(*registry)
              .Add({})) {}

void CuratorService::Record(const v1::CurationSummary& summary) {
  received_.Increment(static_cast<double>(summary.received()));
  kept_.Increment(static_cast<double>(summary.kept()));
  examples_.Increment(static_cast<double>(summary.examples_received()));
  for (const v1::DropCount& d : summary.dropped_by_reason()) {
    dropped_.Add({{"reason", std::string(curator::DropReasonName(d.reason()))}})
        .Increment(static_cast<double>(d.count()));
  }
  if (summary.examples_with_gold() > 0) teacher_accuracy_.Set(summary.teacher_accuracy());
}

grpc::Status CuratorService::Curate(grpc::ServerContext* context,
                                    grpc::ServerReaderWriter<v1::CurateResponse, v1::CurateRequest>* stream) {
  return rpc::Handle(guard_, context, [&]() -> absl::Status {
    v1::CurateRequest first;
    if (!stream->Read(&first))
      return absl::InvalidArgumentError("config: the stream ended before its config message");
    if (!first.has_config()) {
      return absl::FailedPreconditionError(
          "config: the first message must be the stream's config, not an input");
    }
    bool writable = true;
    ASSIGN_OR_RETURN(std::unique_ptr<curator::Curation> curation,
                     curator::Curation::Create(first.config(), [&](v1::CurateResponse r) {
                       if (writable && !stream->Write(r)) writable = false;
                     }));
    v1::CurateRequest request;
    while (stream->Read(&request)) {
      if (!request.has_input()) {
        return absl::FailedPreconditionError("config: only the first message of a stream may be a config");
      }
      curation->Add(request.input());
      if (!writable) return absl::CancelledError("the client stopped reading");
    }
    Record(curation->Finish());
    return absl::OkStatus();
  });
}

grpc::Status CuratorService::CurateDataset(grpc::ServerContext* context,
                                           const v1::CurateDatasetRequest* request,
                                           v1::CurateDatasetResponse* response) {
  return rpc::Handle(guard_, context, [&]() -> absl::Status {
    if (request->input().uri().empty()) return absl::InvalidArgumentError("input.uri: is required");
    ASSIGN_OR_RETURN(std::string input_path,
                     artifacts::ResolveUri(config_.artifact_root, request->input().uri(), "input.uri"));
    if (!std::filesystem::exists(input_path)) {
      return absl::NotFoundError(strings::Cat("input.uri: no such file \"", input_path, "\""));
    }
    RETURN_IF_ERROR(artifacts::VerifyContentHash(input_path, request->input().content_hash(), "input"));
    curator::CurateFileOptions options;
    options.input_path = input_path;
    *options.config.mutable_task() = request->task();
    *options.config.mutable_options() = request->options();
    std::string output_uri = request->output_uri();
    if (output_uri.empty()) {
      // Content-addressed by what determines the output: the input and the config.
      std::string config_json;
      (void)google::protobuf::util::MessageToJsonString(options.config, &config_json);
      output_uri = strings::Cat(
          "artifact://curated/",
          hash::Sha256Hex(strings::Cat(request->input().uri(), "\n", config_json)).substr(0, 16), "/");
    }
    ASSIGN_OR_RETURN(options.output_dir, artifacts::ResolveUri(config_.artifact_root, output_uri, "output_uri"));
    ASSIGN_OR_RETURN(curator::CurateFileResult result, curator::CurateFile(options));
    response->mutable_output()->set_uri(output_uri.back() == '/' ? output_uri : output_uri + "/");
    response->mutable_output()->set_content_hash(result.manifest_hash);
    response->mutable_records()->set_uri(strings::Cat(response->output().uri(), "records.jsonl"));
    response->mutable_records()->set_content_hash(result.records_hash);
    response->mutable_records()->set_size_bytes(result.records_bytes);
    *response->mutable_summary() = result.summary;
    Record(result.summary);
    return absl::OkStatus();
  });
}

rpc::ServiceDefinition CuratorDefinition() {
  auto config = std::make_shared<CuratorConfig>();
  rpc::ServiceDefinition definition;
  definition.name = "curator";
  definition.defaults.server.grpc_address = "0.0.0.0:50052";
  definition.defaults.server.metrics_address = "0.0.0.0:9402";
  definition.read_config = [config](config::Node& root) {
    config::Node node = root.Child("curator");
    node.Read("artifact_root", &config->artifact_root);
    node.Check(!config->artifact_root.empty(), "artifact_root", "must not be empty");
  };
  definition.factory =
      [config](const rpc::ModuleContext& context) -> absl::StatusOr<std::unique_ptr<rpc::ServiceModule>> {
    return std::make_unique<rpc::SingleServiceModule<CuratorService>>(
        v1::Curator::service_full_name(), context.guard, *config, context.registry);
  };
  return definition;
}

}  // namespace distill::services
