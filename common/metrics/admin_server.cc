#include "common/metrics/admin_server.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/status/macros.h"
#include "common/strings/strings.h"
#include "httplib.h"

namespace distill::metrics {
namespace {

constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";
constexpr char kTextContentType[] = "text/plain; charset=utf-8";

// Scrapes and probes are few and cheap; a handful of workers keeps one slow client from blocking
// the others without spending a thread per core.
constexpr size_t kWorkerThreads = 4;

// An idle keep-alive connection, or a client that stalls mid-request, holds a worker for this long,
// and Stop() waits for it. Scrapers and probes send their short requests at once.
constexpr time_t kIdleTimeoutSeconds = 1;

}  // namespace

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::Start(std::string_view address,
                                                                const Registry* registry,
                                                                std::function<bool()> ready) {
  if (registry == nullptr) {
    return absl::InvalidArgumentError(
        strings::Cat(http_server::Listener::ErrorPrefix("admin address", address), "registry is null"));
  }
  auto server = std::make_unique<httplib::Server>();
  server->new_task_queue = [] { return new httplib::ThreadPool(kWorkerThreads); };
  server->set_keep_alive_timeout(kIdleTimeoutSeconds);
  server->set_read_timeout(kIdleTimeoutSeconds);
  server->Get("/metrics", [registry](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry->Serialize(), kMetricsContentType);
  });
  server->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok", kTextContentType);
  });
  server->Get("/readyz", [ready = std::move(ready)](const httplib::Request&, httplib::Response& res) {
    if (!ready || ready()) {
      res.set_content("ready", kTextContentType);
    } else {
      res.status = 503;
      res.set_content("not ready", kTextContentType);
    }
  });
  server->set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
        if (res.status != 404 || !res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        res.set_content("not found", kTextContentType);
        return httplib::Server::HandlerResponse::Handled;
      }));
  ASSIGN_OR_RETURN(std::unique_ptr<http_server::Listener> listener,
                   http_server::Listener::Start(std::move(server), address, "admin address"));
  return absl::WrapUnique(new AdminServer(std::move(listener)));
}

AdminServer::~AdminServer() { Stop(); }

void AdminServer::Stop() { listener_->Stop(); }

}  // namespace distill::metrics
