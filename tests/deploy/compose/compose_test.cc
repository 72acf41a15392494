// The Docker deployment as committed: deploy/docker-compose.yml, its service configs (loaded with each
// service's own config loader), the Grafana provisioning, deploy/prometheus/prometheus.yml's targets,
// docker/Dockerfile and docker/entrypoint.sh. The generic checks are
// deploy_checks.h's (tested on broken input in deploy_checks_test.cc); the rest ties the files to each
// other and to the services: ports, addresses, the shared volume, the binaries CMake builds.

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/config/yaml.h"
#include "common/rpc/service_main.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/coordinator/coordinator_config.h"
#include "services/coordinator/coordinator_service.h"
#include "services/curator/curator_service.h"
#include "services/inference/inference_config.h"
#include "services/inference/inference_service.h"
#include "services/teacher_gateway/gateway_config.h"
#include "services/teacher_gateway/teacher_gateway_service.h"
#include "services/trainer/trainer_config.h"
#include "services/trainer/trainer_service.h"
#include "tests/deploy/compose/deploy_checks.h"
#include "tests/support/paths.h"
#include "tests/support/temp_dir.h"

namespace distill::deploycheck {
namespace {

using ::testing::Contains;
using ::testing::IsEmpty;
using ::testing::IsSupersetOf;
namespace fs = std::filesystem;

const std::string kSource = ::distill::testing::SourceDir();
const std::string kDeploy = kSource + "/deploy";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  EXPECT_TRUE(in.good() || in.eof()) << "cannot read " << path;
  return buffer.str();
}

// The compose service name of each distill service, its binary and its own config definition.
struct DistillService {
  std::string compose_name;  // teacher-gateway
  std::string binary;        // distill-teacher-gateway
  rpc::ServiceDefinition (*definition)();
};
const std::vector<DistillService>& DistillServices() {
  static const std::vector<DistillService> services = {
      {"coordinator", "distill-coordinator", &services::CoordinatorDefinition},
      {"teacher-gateway", "distill-teacher-gateway", &services::TeacherGatewayDefinition},
      {"curator", "distill-curator", &services::CuratorDefinition},
      {"trainer", "distill-trainer", &services::TrainerDefinition},
      {"inference", "distill-inference", &services::InferenceDefinition},
  };
  return services;
}

class DeployComposeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<YAML::Node> parsed = ParseCompose(ReadFile(kDeploy + "/docker-compose.yml"));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    compose_ = new YAML::Node(*parsed);
  }
  static void TearDownTestSuite() {
    delete compose_;
    compose_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(compose_, nullptr); }

  static YAML::Node Service(const std::string& name) { return (*compose_)["services"][name]; }

  // The host file mounted at the path the service's --config flag names.
  static std::string ConfigFile(const std::string& name, bool* read_only) {
    const std::string container_path = CommandFlag(Service(name), "--config");
    for (const Mount& mount : ServiceMounts(Service(name))) {
      if (mount.bind && mount.target == container_path) {
        *read_only = mount.read_only;
        return (fs::path(kDeploy) / mount.source).lexically_normal().string();
      }
    }
    return "";
  }

  // The service's config as its own binary would load it.
  static rpc::ServiceConfig LoadConfig(const DistillService& service) {
    bool read_only = false;
    const std::string path = ConfigFile(service.compose_name, &read_only);
    absl::StatusOr<rpc::ServiceConfig> config = rpc::LoadServiceConfig(path, service.definition());
    EXPECT_TRUE(config.ok()) << service.compose_name << ": " << config.status();
    return config.ok() ? *config : rpc::ServiceConfig{};
  }

  static int Port(const std::string& address) { return SplitHostPort(address).second; }

  static YAML::Node* compose_;
};
YAML::Node* DeployComposeTest::compose_ = nullptr;

TEST_F(DeployComposeTest, HasTheClusterAndTheMonitoringStack) {
  std::set<std::string> names;
  for (const auto& entry : (*compose_)["services"]) names.insert(entry.first.Scalar());
  EXPECT_EQ(names, (std::set<std::string>{"coordinator", "teacher-gateway", "curator", "trainer", "inference",
                                          "prometheus", "grafana"}));
}

TEST_F(DeployComposeTest, EveryServiceHasAnImageAHealthcheckANonRootUserAndAReadOnlyRoot) {
  EXPECT_THAT(CheckComposeServices(*compose_), IsEmpty());
}

TEST_F(DeployComposeTest, EveryMountedHostPathExistsInTheRepository) {
  EXPECT_THAT(CheckMounts(*compose_, kDeploy), IsEmpty());
}

TEST_F(DeployComposeTest, DistillServicesRunTheImageAsUser10001WithATmpfsTmp) {
  for (const DistillService& service : DistillServices()) {
    const YAML::Node s = Service(service.compose_name);
    SCOPED_TRACE(service.compose_name);
    EXPECT_TRUE(s["build"]) << "built from docker/Dockerfile";
    EXPECT_EQ(s["build"]["dockerfile"].Scalar(), "docker/Dockerfile");
    EXPECT_TRUE(fs::exists(fs::path(kDeploy) / s["build"]["context"].Scalar() / "docker/Dockerfile"));
    EXPECT_EQ(s["user"].Scalar(), "10001:10001");
    bool tmp = false;
    for (const YAML::Node& t : s["tmpfs"]) tmp = tmp || t.Scalar() == "/tmp";
    EXPECT_TRUE(tmp) << "read-only root: /tmp must be a tmpfs";
  }
}

TEST_F(DeployComposeTest, EveryConfigFileIsMountedReadOnlyAndAcceptedByItsServicesLoader) {
  for (const DistillService& service : DistillServices()) {
    SCOPED_TRACE(service.compose_name);
    bool read_only = false;
    const std::string path = ConfigFile(service.compose_name, &read_only);
    ASSERT_FALSE(path.empty()) << "no --config flag with a bind-mounted file";
    EXPECT_EQ(path, kDeploy + "/config/" + service.compose_name + ".yaml");
    EXPECT_TRUE(read_only);
    absl::StatusOr<rpc::ServiceConfig> config = rpc::LoadServiceConfig(path, service.definition());
    EXPECT_TRUE(config.ok()) << config.status();
  }
}

TEST_F(DeployComposeTest, TheConfigCheckCanFail) {
  // The same loader, given a config with a typo and a bad value, names both: the test above would fail.
  testing::TempDir dir;
  std::ofstream(dir.File("curator.yaml"))
      << "server:\n  grpc_adress: 0.0.0.0:1\ncurator:\n  artifact_root: \"\"\n";
  absl::StatusOr<rpc::ServiceConfig> config =
      rpc::LoadServiceConfig(dir.File("curator.yaml"), services::CuratorDefinition());
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), ::testing::HasSubstr("grpc_adress"));
  EXPECT_THAT(std::string(config.status().message()), ::testing::HasSubstr("artifact_root"));
}

TEST_F(DeployComposeTest, ServicesListEverywhereOnTheirDefaultPortsAndHealthchecksAskTheGrpcPort) {
  for (const DistillService& service : DistillServices()) {
    SCOPED_TRACE(service.compose_name);
    const rpc::ServiceConfig config = LoadConfig(service);
    const rpc::ServiceDefinition definition = service.definition();
    // Listening on every address of the container, on the ports Dockerfile EXPOSEs and the chart and
    // Prometheus expect.
    EXPECT_EQ(SplitHostPort(config.server.grpc_address).first, "0.0.0.0");
    EXPECT_EQ(SplitHostPort(config.server.metrics_address).first, "0.0.0.0");
    EXPECT_EQ(Port(config.server.grpc_address), Port(definition.defaults.server.grpc_address));
    EXPECT_EQ(Port(config.server.metrics_address), Port(definition.defaults.server.metrics_address));
    EXPECT_EQ(HealthcheckPort(Service(service.compose_name)), Port(config.server.grpc_address));
    // No auth and no TLS in the compose cluster: distillctl health and the services' calls to each other
    // use plaintext without tokens.
    EXPECT_FALSE(config.server.tls.enabled());
    EXPECT_FALSE(config.server.auth.enabled());
  }
}

TEST_F(DeployComposeTest, PublishedPortsAreOnesTheServicesListenOn) {
  for (const DistillService& service : DistillServices()) {
    SCOPED_TRACE(service.compose_name);
    const rpc::ServiceConfig config = LoadConfig(service);
    std::set<int> listening = {Port(config.server.grpc_address), Port(config.server.metrics_address)};
    if (service.compose_name == "inference") {
      ASSERT_TRUE(YAML::LoadFile(kDeploy + "/config/inference.yaml")["inference"]["http_address"]);
      listening.insert(
          Port(YAML::LoadFile(kDeploy + "/config/inference.yaml")["inference"]["http_address"].Scalar()));
    }
    for (int port : PublishedContainerPorts(Service(service.compose_name)))
      EXPECT_TRUE(listening.count(port)) << port;
  }
  // distillctl on the host reaches the coordinator; the OpenAI-compatible API is published.
  EXPECT_THAT(PublishedContainerPorts(Service("coordinator")), Contains(50050));
  EXPECT_THAT(PublishedContainerPorts(Service("inference")), Contains(8000));
}

TEST_F(DeployComposeTest, TheCoordinatorCallsTheOtherServicesByComposeNameOnTheirGrpcPorts) {
  bool read_only = false;
  absl::StatusOr<config::Document> doc = config::Document::LoadFile(ConfigFile("coordinator", &read_only));
  ASSERT_TRUE(doc.ok()) << doc.status();
  config::Node root = doc->Root();
  coordinator::CoordinatorConfig c;
  coordinator::ReadCoordinatorConfig(root, &c);
  const std::map<std::string, std::string> addresses = {{"teacher-gateway", c.teacher_gateway_address},
                                                        {"curator", c.curator_address},
                                                        {"trainer", c.trainer_address},
                                                        {"inference", c.inference_address}};
  for (const auto& [name, address] : addresses) {
    SCOPED_TRACE(name);
    EXPECT_EQ(SplitHostPort(address).first, name);
    for (const DistillService& service : DistillServices()) {
      if (service.compose_name == name) {
        EXPECT_EQ(Port(address), Port(LoadConfig(service).server.grpc_address));
      }
    }
  }
}

TEST_F(DeployComposeTest, StateLivesOnTheSharedDataVolume) {
  // Every distill service mounts the same named volume at /data.
  for (const DistillService& service : DistillServices()) {
    SCOPED_TRACE(service.compose_name);
    bool data = false;
    for (const Mount& mount : ServiceMounts(Service(service.compose_name))) {
      data = data ||
             (!mount.bind && mount.source == "distill-data" && mount.target == "/data" && !mount.read_only);
    }
    EXPECT_TRUE(data);
  }
  bool read_only = false;
  std::map<std::string, std::string> roots;
  {
    absl::StatusOr<config::Document> doc = config::Document::LoadFile(ConfigFile("coordinator", &read_only));
    ASSERT_TRUE(doc.ok());
    config::Node root = doc->Root();
    coordinator::CoordinatorConfig c;
    coordinator::ReadCoordinatorConfig(root, &c);
    roots["coordinator"] = c.artifact_root;
    EXPECT_TRUE(absl::StartsWith(c.database, "/data/")) << c.database;
  }
  {
    absl::StatusOr<config::Document> doc = config::Document::LoadFile(ConfigFile("trainer", &read_only));
    ASSERT_TRUE(doc.ok());
    config::Node root = doc->Root();
    trainer::TrainerConfig c;
    trainer::ReadTrainerConfig(root, &c);
    roots["trainer"] = c.artifact_root;
  }
  {
    absl::StatusOr<config::Document> doc = config::Document::LoadFile(ConfigFile("inference", &read_only));
    ASSERT_TRUE(doc.ok());
    config::Node root = doc->Root();
    inference::InferenceConfig c;
    inference::ReadInferenceConfig(root, &c);
    roots["inference"] = c.artifact_root;
  }
  {
    absl::StatusOr<config::Document> doc =
        config::Document::LoadFile(ConfigFile("teacher-gateway", &read_only));
    ASSERT_TRUE(doc.ok());
    config::Node root = doc->Root();
    teacher::TeacherGatewayConfig c = teacher::DefaultTeacherGatewayConfig();
    teacher::ReadTeacherGatewayConfig(root, &c);
    EXPECT_TRUE(absl::StartsWith(c.cache_path, "/data/")) << c.cache_path;
  }
  // The curator's reader lives inside its definition; its key is read here as the loader above accepted it.
  roots["curator"] =
      YAML::LoadFile(ConfigFile("curator", &read_only))["curator"]["artifact_root"].as<std::string>("");
  for (const auto& [name, root] : roots) EXPECT_EQ(root, "/data/artifacts") << name;
}

TEST_F(DeployComposeTest, PrometheusScrapesEveryDistillServiceOnItsMetricsPort) {
  const std::string path = kDeploy + "/prometheus/prometheus.yml";
  if (!fs::exists(path)) GTEST_SKIP() << path << " does not exist yet";
  absl::StatusOr<std::vector<ScrapeTarget>> targets = ParseScrapeTargets(ReadFile(path));
  ASSERT_TRUE(targets.ok()) << targets.status();
  std::map<std::string, int> scraped;
  for (const ScrapeTarget& target : *targets) {
    if (target.host == "localhost" || target.host == "127.0.0.1") continue;  // Prometheus itself.
    EXPECT_TRUE(Service(target.host)) << target.host << " is not a compose service";
    scraped[target.host] = target.port;
  }
  for (const DistillService& service : DistillServices()) {
    SCOPED_TRACE(service.compose_name);
    ASSERT_TRUE(scraped.count(service.compose_name)) << "not scraped";
    EXPECT_EQ(scraped[service.compose_name], Port(LoadConfig(service).server.metrics_address));
  }
  // Prometheus reads the mounted folder.
  bool mounted = false;
  for (const Mount& mount : ServiceMounts(Service("prometheus"))) {
    mounted =
        mounted || (mount.source == "./prometheus" && mount.target == "/etc/prometheus" && mount.read_only);
  }
  EXPECT_TRUE(mounted);
  EXPECT_EQ(CommandFlag(Service("prometheus"), "--config.file"), "/etc/prometheus/prometheus.yml");
}

TEST_F(DeployComposeTest, GrafanaIsProvisionedWithPrometheusAndTheMountedDashboards) {
  std::map<std::string, std::string> mounts;
  for (const Mount& mount : ServiceMounts(Service("grafana"))) mounts[mount.source] = mount.target;
  ASSERT_EQ(mounts["./grafana/provisioning"], "/etc/grafana/provisioning");
  const std::string dashboards_target = mounts["./grafana/dashboards"];
  ASSERT_FALSE(dashboards_target.empty());

  const YAML::Node datasources = YAML::LoadFile(kDeploy + "/grafana/provisioning/datasources/prometheus.yml");
  ASSERT_EQ(datasources["datasources"].size(), 1u);
  const YAML::Node prometheus = datasources["datasources"][0];
  EXPECT_EQ(prometheus["type"].Scalar(), "prometheus");
  EXPECT_TRUE(prometheus["isDefault"].as<bool>());  // The dashboards' datasource variable defaults to it.
  const std::string url = prometheus["url"].Scalar();
  ASSERT_TRUE(absl::StartsWith(url, "http://"));
  const auto [host, port] = SplitHostPort(url.substr(strlen("http://")));
  EXPECT_TRUE(Service(host)) << host;
  EXPECT_THAT(PublishedContainerPorts(Service(host)), Contains(port));

  const YAML::Node providers = YAML::LoadFile(kDeploy + "/grafana/provisioning/dashboards/distill.yml");
  ASSERT_EQ(providers["providers"].size(), 1u);
  EXPECT_EQ(providers["providers"][0]["type"].Scalar(), "file");
  EXPECT_EQ(providers["providers"][0]["options"]["path"].Scalar(), dashboards_target);
  int dashboards = 0;
  for (const auto& entry : fs::directory_iterator(kDeploy + "/grafana/dashboards")) {
    dashboards += entry.path().extension() == ".json";
  }
  EXPECT_GT(dashboards, 0);
}

TEST_F(DeployComposeTest, OnlyTheTeacherGatewayGetsTheOpenAiVariablesPassedThrough) {
  std::set<std::string> names;
  for (const YAML::Node& variable : Service("teacher-gateway")["environment"])
    names.insert(variable.Scalar());
  EXPECT_EQ(names, (std::set<std::string>{"OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"}));
  for (const DistillService& service : DistillServices()) {
    if (service.compose_name != "teacher-gateway") {
      EXPECT_FALSE(Service(service.compose_name)["environment"]) << service.compose_name;
    }
  }
}

// ---- docker/

std::vector<std::string> DockerIgnore() { return SignificantLines(ReadFile(kSource + "/.dockerignore")); }

TEST(DeployDockerfileTest, TheDockerfilePassesTheChecks) {
  for (const std::string name : {"Dockerfile"}) {
    EXPECT_THAT(
        CheckDockerfile("docker/" + name, ReadFile(kSource + "/docker/" + name), kSource, DockerIgnore()),
        IsEmpty());
  }
}

TEST(DeployDockerfileTest, DockerIgnoreKeepsBuildTreesAndDataOutOfTheContext) {
  const std::vector<std::string> ignore = DockerIgnore();
  for (const std::string path : {"build/release/bin/distill", "distill-data/coordinator.db", ".git/HEAD"}) {
    EXPECT_TRUE(DockerIgnored(path, ignore)) << path;
  }
  for (const std::string path :
       {"CMakeLists.txt", "services/curator/main.cc", "scripts/install-deps.sh", "docker/entrypoint.sh",
        "proto/distill/v1/jobs.proto", "cmake/Dependencies.cmake"}) {
    EXPECT_FALSE(DockerIgnored(path, ignore)) << path;
  }
}

TEST(DeployDockerfileTest, TheImagesExposeEveryServicePort) {
  for (const std::string name : {"Dockerfile"}) {
    SCOPED_TRACE(name);
    std::set<int> exposed;
    for (const Instruction& instruction : ParseDockerfile(ReadFile(kSource + "/docker/" + name))) {
      if (instruction.keyword != "EXPOSE") continue;
      for (const std::string& word : SplitArgs(instruction.args)) {
        int port = 0;
        if (absl::SimpleAtoi(word.substr(0, word.find('/')), &port)) exposed.insert(port);
      }
    }
    std::set<int> expected = {8000};
    for (const DistillService& service : DistillServices()) {
      const rpc::ServiceDefinition definition = service.definition();
      expected.insert(SplitHostPort(definition.defaults.server.grpc_address).second);
      expected.insert(SplitHostPort(definition.defaults.server.metrics_address).second);
    }
    EXPECT_EQ(exposed, expected);
  }
}

TEST_F(DeployComposeTest, EntrypointMapsEveryServiceAndToolToABinaryCMakeBuildsAndTheImageInstalls) {
  const std::string script = ReadFile(kSource + "/docker/entrypoint.sh");
  const std::map<std::string, std::string> binaries = ShellCaseEchoes(script, "binary_for");
  const std::set<std::string> built = CMakeBinaries(kSource + "/services");
  ASSERT_FALSE(built.empty());
  for (const std::string name :
       {"coordinator", "teacher-gateway", "curator", "trainer", "inference", "distill", "distillctl"}) {
    ASSERT_TRUE(binaries.count(name)) << name << " is not mapped";
  }
  std::set<std::string> mapped;
  for (const auto& [name, binary] : binaries) {
    EXPECT_TRUE(built.count(binary)) << name << " -> " << binary << ": no distill_cc_binary builds it";
    mapped.insert(binary);
  }
  // The image builds and installs exactly those binaries.
  for (const std::string name : {"Dockerfile"}) {
    const std::vector<std::string> listed = absl::StrSplit(
        ArgDefault(ReadFile(kSource + "/docker/" + name), "DISTILL_BINARIES"), ' ', absl::SkipEmpty());
    EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()), mapped) << name;
  }
  // Each compose service starts the binary of its name.
  for (const DistillService& service : DistillServices()) {
    const YAML::Node command = Service(service.compose_name)["command"];
    ASSERT_TRUE(command && command.IsSequence() && command.size() > 0) << service.compose_name;
    EXPECT_EQ(binaries.at(command[0].Scalar()), service.binary);
  }
}

TEST(DeployEntrypointTest, TheHealthProbesDefaultPortsAreTheServicesDefaultGrpcPorts) {
  const std::map<std::string, std::string> ports =
      ShellCaseEchoes(ReadFile(kSource + "/docker/entrypoint.sh"), "grpc_port_for");
  ASSERT_EQ(ports.size(), DistillServices().size());
  for (const DistillService& service : DistillServices()) {
    ASSERT_TRUE(ports.count(service.binary)) << service.binary;
    EXPECT_EQ(ports.at(service.binary),
              std::to_string(SplitHostPort(service.definition().defaults.server.grpc_address).second));
  }
}

// ---- scripts/install-deps.sh --runtime

// Standard output of `command` run by /bin/sh.
std::string Shell(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return output;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof(buffer), pipe)) output.append(buffer, n);
  ::pclose(pipe);
  return output;
}

TEST(DeployRuntimePackagesTest, EveryLibraryTheBinariesLinkComesFromARuntimePackage) {
  const std::vector<std::string> runtime =
      BashArray(ReadFile(kSource + "/scripts/install-deps.sh"), "runtime_packages");
  ASSERT_FALSE(runtime.empty()) << "no runtime_packages=( ... ) in scripts/install-deps.sh";
  std::set<std::string> packages(runtime.begin(), runtime.end());
  packages.insert({"libc6", "libgcc-s1"});  // In every Debian image.
  const std::string bin = ::distill::testing::BinaryDir() + "/bin/";
  std::vector<std::string> files;
  const std::vector<std::string> binaries = absl::StrSplit(
      ArgDefault(ReadFile(kSource + "/docker/Dockerfile"), "DISTILL_BINARIES"), ' ', absl::SkipEmpty());
  for (const std::string& binary : binaries) files.push_back(bin + binary);
  // The tokenizer's SentencePiece shim: embedded in the binaries and dlopened, so its libraries count too.
  files.push_back(::distill::testing::BinaryDir() +
                  "/common/student/tokenizer/libdistill_common_student_tokenizer_spm_shim.so");
  struct Need {
    std::string file, soname, path;
  };
  std::vector<Need> needs;
  for (const std::string& file : files) {
    ASSERT_TRUE(fs::exists(file)) << file;
    std::map<std::string, std::string> resolved;  // soname -> path, from ldd's "soname => path (addr)".
    for (absl::string_view line : absl::StrSplit(Shell("ldd '" + file + "'"), '\n')) {
      std::vector<std::string> words = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
      if (words.size() >= 3 && words[1] == "=>") resolved[words[0]] = words[2];
    }
    for (absl::string_view soname :
         absl::StrSplit(Shell("objdump -p '" + file + "' | awk '$1 == \"NEEDED\" {print $2}'"), '\n',
                        absl::SkipEmpty())) {
      const std::string path = resolved[std::string(soname)];
      ASSERT_TRUE(absl::StartsWith(path, "/")) << file << ": " << soname << " does not resolve";
      needs.push_back({file, std::string(soname), path});
    }
  }
  // One dpkg query for every path, then one for the real paths of those it does not know (/lib vs /usr/lib).
  std::map<std::string, std::string> owners;                           // path -> package
  auto query = [&](const std::map<std::string, std::string>& paths) {  // path asked -> path reported as
    std::string command = "dpkg -S";
    for (const auto& [asked, path] : paths) command += " '" + asked + "'";
    for (absl::string_view line : absl::StrSplit(Shell(command + " 2>/dev/null"), '\n', absl::SkipEmpty())) {
      const size_t colon = line.find(": /");
      if (colon == absl::string_view::npos) continue;
      const std::string asked(line.substr(colon + 2));
      if (paths.count(asked)) owners[paths.at(asked)] = std::string(line.substr(0, line.find_first_of(",:")));
    }
  };
  std::map<std::string, std::string> paths;
  for (const Need& need : needs) paths[need.path] = need.path;
  query(paths);
  std::map<std::string, std::string> real_paths;
  for (const auto& [path, unused] : paths) {
    if (!owners.count(path)) real_paths[fs::canonical(path).string()] = path;
  }
  if (!real_paths.empty()) query(real_paths);
  // libtorch and the CUDA libraries come from the pinned virtualenv, which --runtime creates too.
  const std::string venv = fs::canonical(fs::path(DISTILL_VENV_PYTHON).parent_path().parent_path()).string();
  for (const Need& need : needs) {
    if (absl::StartsWith(fs::canonical(need.path).string(), venv + "/")) continue;
    const std::string& package = owners[need.path];
    EXPECT_TRUE(packages.count(package))
        << need.file << " needs " << need.soname << " (" << need.path << ") from package \"" << package
        << "\", which scripts/install-deps.sh --runtime does not install";
  }
}

}  // namespace
}  // namespace distill::deploycheck
