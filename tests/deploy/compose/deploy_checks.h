#ifndef DISTILL_TESTS_DEPLOY_COMPOSE_DEPLOY_CHECKS_H_
#define DISTILL_TESTS_DEPLOY_COMPOSE_DEPLOY_CHECKS_H_

// Checks of the files that deploy distill with Docker: the compose file (deploy/docker-compose.yml), the
// Dockerfiles (docker/), the image's entry point (docker/entrypoint.sh) and the Prometheus scrape
// config. Each check takes the parsed or raw text and returns the problems it found, one message per
// problem naming where it is ("service trainer: ...", "Dockerfile:12: ..."); none = fine. They know
// nothing of distill's own services, so compose_test.cc can apply them to the real files and
// deploy_checks_test.cc to broken inline ones.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "yaml-cpp/yaml.h"

namespace distill::deploycheck {

// ---- YAML and compose

// A deep copy of `node` with every merge key expanded: a mapping's "<<" entry (an aliased mapping or a
// list of them) contributes the keys the mapping does not have itself, earlier list entries first.
// yaml-cpp 0.7 reads "<<" as an ordinary key; Docker Compose merges.
YAML::Node ResolveMergeKeys(const YAML::Node& node);

// Parses a compose file and resolves its merge keys. INVALID_ARGUMENT for a YAML error or a top level
// without a `services` mapping.
absl::StatusOr<YAML::Node> ParseCompose(const std::string& text);

// Every service has `image` or `build`, a healthcheck with a `test`, a `user` that is set and not root
// (neither "root" nor uid 0), and `read_only: true`; every `depends_on` entry names a service of the
// file that has a healthcheck, with `condition: service_healthy`.
std::vector<std::string> CheckComposeServices(const YAML::Node& compose);

// One entry of a service's `volumes` (short "SOURCE:TARGET[:MODE]" or long syntax).
struct Mount {
  std::string source;  // A host path (bind mount) or a volume name.
  std::string target;
  bool bind = false;  // The source is a host path: it starts with "/", "./", "../" or "~".
  bool read_only = false;
};
std::vector<Mount> ServiceMounts(const YAML::Node& service);

// Bind mounts whose source does not exist (relative sources are resolved against `base_dir`, the
// compose file's folder) and named volumes missing from the top-level `volumes`.
std::vector<std::string> CheckMounts(const YAML::Node& compose, const std::string& base_dir);

// The port of a service's healthcheck when it runs `distillctl health --address HOST:PORT` (as
// `--address HOST:PORT` or `--address=HOST:PORT`); 0 otherwise.
int HealthcheckPort(const YAML::Node& service);

// The value following `flag` in the service's `command` list ("--config" → "/etc/distill/x.yaml"); empty
// when absent.
std::string CommandFlag(const YAML::Node& service, const std::string& flag);

// Container ports a service publishes (`ports`: "HOST_IP:HOST:CONTAINER", "HOST:CONTAINER", long syntax).
std::vector<int> PublishedContainerPorts(const YAML::Node& service);

// Splits "host:port"; port 0 when there is none or it is not a number.
std::pair<std::string, int> SplitHostPort(const std::string& address);

// ---- Prometheus

struct ScrapeTarget {
  std::string job;
  std::string host;
  int port = 0;
};
// The static targets of every scrape job of a prometheus.yml. INVALID_ARGUMENT for bad YAML or a
// target that is not host:port.
absl::StatusOr<std::vector<ScrapeTarget>> ParseScrapeTargets(const std::string& text);

// ---- Dockerfiles

struct Instruction {
  int line = 0;         // 1-based line where the instruction starts.
  std::string keyword;  // Upper case: FROM, COPY, RUN, ...
  std::string args;     // Continuation lines joined, comments dropped.
};
std::vector<Instruction> ParseDockerfile(const std::string& text);

// Words of a shell-form argument string, or the elements of an exec-form JSON array.
std::vector<std::string> SplitArgs(const std::string& args);

// `name` is the Dockerfile's name in messages; `context_dir` the build context (the repository root);
// `dockerignore` the lines of its .dockerignore. Checks: every ${VAR} of a FROM is an ARG declared before
// the first FROM; every COPY/ADD --from names an earlier stage; every other COPY/ADD source exists under
// the context and is not excluded by .dockerignore; the final stage has a USER that is not root, a
// HEALTHCHECK, and an exec-form ENTRYPOINT; an absolute program that ENTRYPOINT or an exec-form
// HEALTHCHECK runs is put there by a COPY of the final stage (its destination, or a destination folder
// plus the source's name).
std::vector<std::string> CheckDockerfile(const std::string& name, const std::string& text,
                                         const std::string& context_dir,
                                         const std::vector<std::string>& dockerignore);

// Whether `path` (relative to the context) is excluded by the .dockerignore `patterns` (Docker's rules:
// patterns are relative to the context, match the path or any folder above it, "**" spans folders, "!"
// re-includes, the last matching pattern wins).
bool DockerIgnored(const std::string& path, const std::vector<std::string>& patterns);

// The default of `ARG name=...` in a Dockerfile, quotes removed; empty when there is none.
std::string ArgDefault(const std::string& dockerfile_text, const std::string& name);

// Non-empty lines of a file that are not comments.
std::vector<std::string> SignificantLines(const std::string& text);

// ---- docker/entrypoint.sh and CMake

// The arms of the shell function `function` in `script` that echo a value: `a | b) echo VALUE ;;` maps
// both a and b to VALUE. Arms that echo nothing or return are left out.
std::map<std::string, std::string> ShellCaseEchoes(const std::string& script, const std::string& function);

// The words of the bash array assigned as `name=(` ... `)` (over any number of lines, comments dropped) in
// `script`; empty when there is none.
std::vector<std::string> BashArray(const std::string& script, const std::string& name);

// Names of every `distill_cc_binary(NAME x ...)` in the CMakeLists.txt files under `dir`, recursively.
std::set<std::string> CMakeBinaries(const std::string& dir);

}  // namespace distill::deploycheck

#endif  // DISTILL_TESTS_DEPLOY_COMPOSE_DEPLOY_CHECKS_H_
