#include "common/http_server/listener.h"

#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/memory/memory.h"
#include "common/config/host_port.h"
#include "common/strings/strings.h"
#include "httplib.h"

namespace distill::http_server {
namespace {

// httplib resolves the host itself but reports failure only as "could not bind"; resolving first tells a
// typo in the host apart from a busy port.
absl::Status CheckResolves(const std::string& prefix, const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* result = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &result);
  if (rc != 0) {
    return absl::InvalidArgumentError(strings::Cat(prefix, "cannot resolve host \"", host, "\": ", gai_strerror(rc)));
  }
  freeaddrinfo(result);
  return absl::OkStatus();
}

// Replaces httplib's default, which sets SO_REUSEPORT and so lets a second server bind a port that is
// already in use. SO_REUSEADDR alone still allows a quick restart while old connections linger in
// TIME_WAIT. FD_CLOEXEC keeps the port from leaking into child processes.
void SetSocketOptions(int fd) {
  const int yes = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  const int flags = fcntl(fd, F_GETFD);
  if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

absl::Status BindError(const std::string& prefix, int error) {
  const std::string message = strings::Cat(prefix, "cannot listen: ");
  switch (error) {
    case EADDRINUSE:
      return absl::UnavailableError(strings::Cat(message, "address already in use"));
    case EADDRNOTAVAIL:
      return absl::InvalidArgumentError(strings::Cat(message, "not a local address"));
    case EACCES:
      return absl::PermissionDeniedError(strings::Cat(message, "permission denied (privileged port?)"));
    default:
      return absl::UnavailableError(strings::Cat(message, error != 0 ? std::strerror(error) : "bind failed"));
  }
}

}  // namespace

std::string Listener::ErrorPrefix(std::string_view name, std::string_view address) {
  return strings::Cat(name, " \"", address, "\": ");
}

absl::StatusOr<std::unique_ptr<Listener>> Listener::Start(std::unique_ptr<httplib::Server> server,
                                                          std::string_view address, std::string_view name) {
  const std::string prefix = ErrorPrefix(name, address);
  absl::StatusOr<config::HostPort> parsed = config::ParseHostPort(address);
  if (!parsed.ok()) {
    return absl::Status(parsed.status().code(), strings::Cat(prefix, parsed.status().message()));
  }
  config::HostPort host_port = *std::move(parsed);
  if (absl::Status resolves = CheckResolves(prefix, host_port.host); !resolves.ok()) return resolves;

  server->set_socket_options(SetSocketOptions);
  // httplib reports a failed bind as a bare false/-1; errno still holds the reason from bind() or
  // listen(), as closing the failed socket leaves it alone.
  errno = 0;
  int port = host_port.port;
  if (port == 0) {
    port = server->bind_to_any_port(host_port.host);
  } else if (!server->bind_to_port(host_port.host, port)) {
    port = -1;
  }
  if (port < 0) return BindError(prefix, errno);
  host_port.port = static_cast<uint16_t>(port);

  auto listener = absl::WrapUnique(new Listener(host_port.ToString(), std::move(server)));
  absl::MutexLock lock(&listener->stop_mu_);
  Listener* raw = listener.get();
  listener->thread_ = std::thread([raw] {
    raw->server_->listen_after_bind();
    raw->exited_.store(true);
  });
  // httplib's stop() does nothing until the accept loop has marked the server running; waiting for that
  // here means a Stop() right after Start() cannot be lost.
  while (!raw->server_->is_running() && !raw->exited_.load()) std::this_thread::yield();
  return listener;
}

Listener::Listener(std::string address, std::unique_ptr<httplib::Server> server)
    : address_(std::move(address)), server_(std::move(server)) {}

Listener::~Listener() { Stop(); }

void Listener::Stop() {
  absl::MutexLock lock(&stop_mu_);
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

}  // namespace distill::http_server
