// The deployment checks on small inline inputs, good and broken: every check that compose_test.cc relies
// on must be able to fail.

#include "tests/deploy/compose/deploy_checks.h"

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace distill::deploycheck {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

YAML::Node Compose(const std::string& text) {
  absl::StatusOr<YAML::Node> compose = ParseCompose(text);
  EXPECT_TRUE(compose.ok()) << compose.status();
  return compose.ok() ? *compose : YAML::Node();
}

constexpr char kGoodCompose[] = R"(
x-base: &base
  image: distill:latest
  user: "10001:10001"
  read_only: true
  healthcheck:
    test: ["CMD", "distillctl", "health", "--address", "127.0.0.1:50052"]
services:
  curator:
    <<: *base
  coordinator:
    <<: *base
    healthcheck:
      test: ["CMD", "distillctl", "health", "--address=127.0.0.1:50050"]
    depends_on:
      curator: {condition: service_healthy}
)";

TEST(DeployResolveMergeKeysTest, MergesAliasedMappingsAndKeepsExplicitKeys) {
  const YAML::Node compose = Compose(kGoodCompose);
  const YAML::Node curator = compose["services"]["curator"];
  EXPECT_FALSE(curator["<<"]);
  EXPECT_EQ(curator["image"].Scalar(), "distill:latest");
  EXPECT_EQ(curator["user"].Scalar(), "10001:10001");
  // The coordinator's own healthcheck wins over the merged one.
  EXPECT_EQ(HealthcheckPort(compose["services"]["coordinator"]), 50050);
  EXPECT_EQ(HealthcheckPort(curator), 50052);

  const YAML::Node list =
      ResolveMergeKeys(YAML::Load("a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc: {<<: [*a, *b], z: 3}"));
  EXPECT_EQ(list["c"]["x"].Scalar(), "1");
  EXPECT_EQ(list["c"]["y"].Scalar(), "1");  // Earlier list entries first.
  EXPECT_EQ(list["c"]["z"].Scalar(), "3");
}

TEST(DeployParseComposeTest, RejectsBadYamlAndFilesWithoutServices) {
  EXPECT_FALSE(ParseCompose("services: [unclosed").ok());
  EXPECT_THAT(std::string(ParseCompose("volumes: {}\n").status().message()), HasSubstr("no `services`"));
}

TEST(DeployCheckComposeServicesTest, AcceptsAGoodFile) {
  EXPECT_THAT(CheckComposeServices(Compose(kGoodCompose)), IsEmpty());
}

TEST(DeployCheckComposeServicesTest, FlagsEveryMissingSafeguard) {
  const YAML::Node compose = Compose(R"(
services:
  bare: {command: ["x"]}
  rooted:
    image: x
    user: "0:0"
    read_only: false
    healthcheck: {test: ["CMD", "true"], disable: true}
  named_root:
    build: .
    user: root
    read_only: true
    healthcheck: {test: "true"}
    depends_on: [bare]
  waiting:
    image: x
    user: "10001"
    read_only: true
    healthcheck: {test: ["CMD", "true"]}
    depends_on:
      bare: {condition: service_healthy}
      rooted: {condition: service_started}
      ghost: {condition: service_healthy}
)");
  const std::vector<std::string> problems = CheckComposeServices(compose);
  EXPECT_THAT(problems,
              UnorderedElementsAre(
                  "service bare: has neither image nor build", "service bare: has no healthcheck test",
                  HasSubstr("service bare: sets no user"), "service bare: root file system is not read_only",
                  "service rooted: disables its healthcheck", "service rooted: runs as root (user \"0:0\")",
                  "service rooted: root file system is not read_only",
                  "service named_root: runs as root (user \"root\")",
                  HasSubstr("service named_root: depends_on in short syntax"),
                  "service waiting: depends on \"bare\", which has no healthcheck",
                  "service waiting: depends on \"rooted\" without condition: service_healthy",
                  "service waiting: depends on unknown service \"ghost\""));
}

TEST(DeployCheckMountsTest, FlagsMissingHostPathsPathsOutsideAndUndeclaredVolumes) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.File("config"));
  std::ofstream(dir.File("config/a.yaml")) << "server: {}\n";
  const YAML::Node compose = Compose(R"(
services:
  a:
    volumes:
      - ./config/a.yaml:/etc/a.yaml:ro
      - ./config/missing.yaml:/etc/b.yaml:ro
      - /var/run/docker.sock:/var/run/docker.sock
      - data:/data
      - undeclared:/other
      - /anonymous
      - {type: bind, source: ./config, target: /etc/config, read_only: true}
volumes:
  data:
)");
  EXPECT_THAT(
      CheckMounts(compose, dir.path()),
      UnorderedElementsAre(HasSubstr("service a: bind mount source ./config/missing.yaml does not exist"),
                           "service a: bind mount /var/run/docker.sock is outside the repository",
                           "service a: volume \"undeclared\" is not declared under the top-level volumes"));
  const std::vector<Mount> mounts = ServiceMounts(compose["services"]["a"]);
  ASSERT_EQ(mounts.size(), 7u);
  EXPECT_TRUE(mounts[0].bind);
  EXPECT_TRUE(mounts[0].read_only);
  EXPECT_EQ(mounts[0].target, "/etc/a.yaml");
  EXPECT_FALSE(mounts[3].bind);
  EXPECT_FALSE(mounts[3].read_only);
  EXPECT_TRUE(mounts[6].bind);
  EXPECT_TRUE(mounts[6].read_only);
}

TEST(DeployServiceFieldsTest, CommandFlagsHealthcheckPortsAndPublishedPorts) {
  const YAML::Node service = YAML::Load(R"(
command: ["curator", "--config", "/etc/distill/curator.yaml", "--log=debug"]
healthcheck: {test: "distillctl health --address 127.0.0.1:50052"}
ports: ["127.0.0.1:50052:50052", "9402:9402/tcp", "8000", {target: 8001, published: 18001}]
)");
  EXPECT_EQ(CommandFlag(service, "--config"), "/etc/distill/curator.yaml");
  EXPECT_EQ(CommandFlag(service, "--log"), "debug");
  EXPECT_EQ(CommandFlag(service, "--missing"), "");
  EXPECT_EQ(HealthcheckPort(service), 50052);
  EXPECT_THAT(PublishedContainerPorts(service), ElementsAre(50052, 9402, 8000, 8001));
  // Not a distillctl health probe: no port.
  EXPECT_EQ(HealthcheckPort(YAML::Load("healthcheck: {test: [CMD, curl, --address, 'x:1']}")), 0);
  EXPECT_EQ(SplitHostPort("coordinator:9400"), (std::pair<std::string, int>("coordinator", 9400)));
  EXPECT_EQ(SplitHostPort("coordinator").second, 0);
}

TEST(DeployParseScrapeTargetsTest, ReadsEveryStaticTargetAndRejectsBadOnes) {
  absl::StatusOr<std::vector<ScrapeTarget>> targets = ParseScrapeTargets(R"(
scrape_configs:
  - job_name: distill
    static_configs:
      - targets: ["coordinator:9400", "curator:9402"]
  - job_name: self
    static_configs:
      - targets: ["localhost:9090"]
)");
  ASSERT_TRUE(targets.ok()) << targets.status();
  ASSERT_EQ(targets->size(), 3u);
  EXPECT_EQ((*targets)[1].job, "distill");
  EXPECT_EQ((*targets)[1].host, "curator");
  EXPECT_EQ((*targets)[1].port, 9402);
  EXPECT_EQ((*targets)[2].job, "self");
  EXPECT_THAT(
      std::string(ParseScrapeTargets("scrape_configs: [{job_name: x, static_configs: [{targets: [nope]}]}]")
                      .status()
                      .message()),
      HasSubstr("\"nope\" is not host:port"));
}

TEST(DeployParseDockerfileTest, JoinsContinuationsAndDropsComments) {
  const std::vector<Instruction> instructions = ParseDockerfile(
      "# syntax=docker/dockerfile:1\n"
      "FROM debian:bookworm AS build\n"
      "RUN a \\\n"
      "# a comment inside\n"
      "\n"
      "    && b\n"
      "copy [\"x y\", \"/z\"]\n");
  ASSERT_EQ(instructions.size(), 3u);
  EXPECT_EQ(instructions[0].keyword, "FROM");
  EXPECT_EQ(instructions[1].line, 3);
  EXPECT_EQ(instructions[1].args, "a && b");
  EXPECT_EQ(instructions[2].keyword, "COPY");
  EXPECT_THAT(SplitArgs(instructions[2].args), ElementsAre("x y", "/z"));
  EXPECT_THAT(SplitArgs("--from=build 'a b' c"), ElementsAre("--from=build", "a b", "c"));
}

TEST(DeployDockerIgnoredTest, FollowsDockersMatchingRules) {
  const std::vector<std::string> patterns = {"# comment", ".git",      "build/",       "/distill-data",
                                             "**/*.swp",  "docs/*.md", "!docs/KEEP.md"};
  EXPECT_TRUE(DockerIgnored("build", patterns));
  EXPECT_TRUE(DockerIgnored("build/release/bin/distill", patterns));
  EXPECT_TRUE(DockerIgnored("./distill-data/x", patterns));
  EXPECT_TRUE(DockerIgnored(".git/config", patterns));
  EXPECT_TRUE(DockerIgnored("a/b/c.swp", patterns));
  EXPECT_TRUE(DockerIgnored("docs/README.md", patterns));
  EXPECT_FALSE(DockerIgnored("docs/KEEP.md", patterns));
  EXPECT_FALSE(DockerIgnored("docs/sub/x.md", patterns));
  EXPECT_FALSE(DockerIgnored("scripts/install-deps.sh", patterns));
  EXPECT_FALSE(DockerIgnored(".", patterns));
  EXPECT_FALSE(DockerIgnored("services/build.cc", patterns));
}

class DeployCheckDockerfileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_.File("scripts"));
    std::filesystem::create_directories(dir_.File("docker"));
    std::ofstream(dir_.File("scripts/install-deps.sh")) << "#!/bin/sh\n";
    std::ofstream(dir_.File("docker/entrypoint.sh")) << "#!/bin/sh\n";
  }
  std::vector<std::string> Check(const std::string& text, std::vector<std::string> ignore = {}) {
    return CheckDockerfile("Dockerfile", text, dir_.path(), ignore);
  }
  testing::TempDir dir_;
};

constexpr char kGoodDockerfile[] = R"(ARG BASE=bookworm
FROM debian:${BASE} AS build
COPY scripts/install-deps.sh /tmp/
COPY . /src
FROM debian:${BASE}-slim
COPY --from=build /opt/bin/ /usr/local/bin/
COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/distill-entrypoint
USER 10001:10001
HEALTHCHECK --interval=15s CMD ["/usr/local/bin/distill-entrypoint", "health"]
ENTRYPOINT ["/usr/local/bin/distill-entrypoint"]
)";

TEST_F(DeployCheckDockerfileTest, AcceptsAGoodFile) { EXPECT_THAT(Check(kGoodDockerfile), IsEmpty()); }

TEST_F(DeployCheckDockerfileTest, FlagsMissingSourcesIgnoredSourcesAndUnknownStages) {
  const std::vector<std::string> problems = Check(R"(FROM debian:${UNDECLARED} AS build
COPY scripts/missing.sh docker/*.sh /tmp/
COPY scripts/ignored.sh /tmp/
FROM debian:bookworm-slim
COPY --from=buidl /opt/bin/ /usr/local/bin/
COPY --from=0 /opt/bin/ /usr/local/bin/
COPY --from=1 /opt/bin/ /usr/local/bin/
COPY docker/entrypoint.sh /usr/local/bin/
USER 10001
HEALTHCHECK CMD ["/usr/local/bin/entrypoint.sh", "health"]
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
)",
                                                  {"scripts/ignored.sh"});
  EXPECT_THAT(
      problems,
      UnorderedElementsAre("Dockerfile:1: FROM uses $UNDECLARED, which no ARG before the first FROM declares",
                           "Dockerfile:2: COPY source scripts/missing.sh does not exist",
                           "Dockerfile:3: COPY source scripts/ignored.sh does not exist",
                           "Dockerfile:3: COPY source scripts/ignored.sh is excluded by .dockerignore",
                           "Dockerfile:5: COPY --from=buidl names no earlier stage",
                           "Dockerfile:7: COPY --from=1 names no earlier stage"));
}

TEST_F(DeployCheckDockerfileTest, FlagsAFinalStageThatRunsAsRootOrLacksItsEntrypoint) {
  EXPECT_THAT(Check("FROM debian\nENTRYPOINT [\"/x\"]\n"),
              UnorderedElementsAre("Dockerfile: the final stage has no USER, so it runs as root",
                                   "Dockerfile: the final stage has no HEALTHCHECK",
                                   "Dockerfile:2: ENTRYPOINT /x is copied by no COPY of the final stage"));
  // USER and HEALTHCHECK of an earlier stage do not count.
  EXPECT_THAT(Check("FROM debian AS a\nUSER 10001\nHEALTHCHECK CMD true\nFROM debian\nUSER root\n"
                    "HEALTHCHECK NONE\nENTRYPOINT /bin/sh\n"),
              UnorderedElementsAre("Dockerfile:5: the final stage runs as root (USER root)",
                                   "Dockerfile: the final stage has no HEALTHCHECK",
                                   "Dockerfile:7: ENTRYPOINT is not in exec form"));
  EXPECT_THAT(
      Check("FROM debian\nUSER 0:0\nHEALTHCHECK CMD [\"/usr/local/bin/probe\"]\n"),
      UnorderedElementsAre("Dockerfile:2: the final stage runs as root (USER 0:0)",
                           "Dockerfile: the final stage has no ENTRYPOINT",
                           "Dockerfile:3: HEALTHCHECK runs /usr/local/bin/probe, which no COPY of the "
                           "final stage provides"));
  EXPECT_THAT(Check("RUN true\n"),
              ElementsAre("Dockerfile:1: RUN before the first FROM", "Dockerfile: no FROM"));
}

TEST(DeployArgDefaultTest, ReadsQuotedAndPlainDefaults) {
  const std::string text = "ARG A=\"x y\"\nFROM debian\nARG B=plain\nARG C\n";
  EXPECT_EQ(ArgDefault(text, "A"), "x y");
  EXPECT_EQ(ArgDefault(text, "B"), "plain");
  EXPECT_EQ(ArgDefault(text, "C"), "");
  EXPECT_EQ(ArgDefault(text, "D"), "");
}

TEST(DeployShellCaseEchoesTest, ReadsTheArmsOfOneFunction) {
  const std::string script = R"(#!/bin/sh
binary_for() {
  case "$1" in
    coordinator) echo distill-coordinator ;;
    teacher-gateway | teacher_gateway) echo "distill-teacher-gateway" ;;
    *) return 1 ;;
  esac
}

grpc_port_for() {
  case "$1" in
    distill-coordinator) echo 50050 ;;
    *) echo "" ;;
  esac
}
)";
  EXPECT_THAT(ShellCaseEchoes(script, "binary_for"),
              UnorderedElementsAre(Pair("coordinator", "distill-coordinator"),
                                   Pair("teacher-gateway", "distill-teacher-gateway"),
                                   Pair("teacher_gateway", "distill-teacher-gateway")));
  EXPECT_THAT(ShellCaseEchoes(script, "grpc_port_for"), ElementsAre(Pair("distill-coordinator", "50050")));
  EXPECT_THAT(ShellCaseEchoes(script, "nope"), IsEmpty());
}

TEST(DeployBashArrayTest, ReadsAMultiLineArrayWithoutComments) {
  const std::string script =
      "other=(x)\nruntime=(\n  liba libb  # the first two\n  # a whole comment line\n"
      "  libc\n)\nruntime+=(libd)\none=(a b) # c\n";
  EXPECT_THAT(BashArray(script, "runtime"), ElementsAre("liba", "libb", "libc"));
  EXPECT_THAT(BashArray(script, "one"), ElementsAre("a", "b"));
  EXPECT_THAT(BashArray(script, "missing"), IsEmpty());
}

TEST(DeployCMakeBinariesTest, FindsEveryBinaryOutsideBuildTrees) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.File("services/a"));
  std::filesystem::create_directories(dir.File("build/release"));
  std::ofstream(dir.File("services/a/CMakeLists.txt"))
      << "distill_cc_library(SRCS a.cc)\ndistill_cc_binary(NAME distill-a SRCS main.cc DEPS x)\n"
         "distill_cc_binary(\n  NAME distillctl\n  SRCS main.cc)\n";
  std::ofstream(dir.File("build/release/CMakeLists.txt")) << "distill_cc_binary(NAME stale SRCS x.cc)\n";
  EXPECT_THAT(CMakeBinaries(dir.path()), ElementsAre("distill-a", "distillctl"));
}

}  // namespace
}  // namespace distill::deploycheck
