package main

// The value sets the chart is rendered with (tests/deploy/helm/testdata/values/*.yaml), what each must
// produce, and the ones that must be refused with a clear message.

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	yaml3 "gopkg.in/yaml.v3"
)

// Variant is one way to install the chart.
type Variant struct {
	Name string
	// Overlay files under testdata/values/, applied in order (helm -f).
	ValuesFiles []string
	// --set expressions applied after the files.
	Set         []string
	ReleaseName string
	KubeVersion string
	// What the values point at that the chart does not create.
	External CheckOptions
	// Non-empty: rendering must fail with a message containing this.
	WantError string
	// Extra expectations on the rendered objects; returns problems.
	Expect func(c *Chart, objs []*Object) []string
}

const testNamespace = "ml"

// Values keys whose value templates pass on whole (toYaml, merged into a config file): the unused-key
// check does not look below them. "*.k" means k at any depth.
var opaqueValues = []string{
	"*.resources", "*.nodeSelector", "*.tolerations", "*.affinity", "*.podAnnotations", "*.podLabels",
	"*.extraEnv", "*.config", "*.annotations", "*.labels", "*.accessModes", "commonLabels",
	"imagePullSecrets", "podSecurityContext", "securityContext", "probes.startup", "probes.readiness",
	"probes.liveness", "teacherGateway.secret.apiKeys", "trainer.distributed.spec",
}

// Variants lists every rendering the checks cover.
func Variants() []Variant {
	return []Variant{
		{Name: "default", Expect: expectDefault},
		{Name: "gpu", ValuesFiles: []string{"gpu.yaml"}, Expect: expectGPU},
		{Name: "distributed", ValuesFiles: []string{"distributed.yaml"}, Expect: expectDistributed},
		{Name: "distributed-gpu", ValuesFiles: []string{"gpu.yaml", "distributed.yaml"},
			Set: []string{"trainer.distributed.gpu=1", "trainer.distributed.worldSize=8",
				"trainer.distributed.spec.training.distributed.worldSize=8", "trainer.distributed.threads=0",
				"trainer.distributed.resources.requests.cpu=1500m"},
			Expect: expectDistributedGPU},
		{Name: "monitoring", ValuesFiles: []string{"monitoring.yaml"}, Expect: expectMonitoring},
		{Name: "existing-secrets", ValuesFiles: []string{"existing-secrets.yaml"},
			External: CheckOptions{ExternalSecrets: []string{"teacher-keys", "distill-token"},
				ExternalClaims: []string{"shared-artifacts"}},
			Expect: expectExistingSecrets},
		{Name: "auth", Set: []string{"auth.enabled=true"}, Expect: expectAuth},
		{Name: "minimal", ValuesFiles: []string{"minimal.yaml"}, Expect: expectMinimal},
		{Name: "scaled", ValuesFiles: []string{"scaled.yaml"}, Expect: expectScaled},
		{Name: "config-overrides", ValuesFiles: []string{"config-overrides.yaml"}, Expect: expectConfigOverrides},
		{Name: "long-names", ReleaseName: "a-release-name-long-enough-to-need-cutting-short-twice",
			ValuesFiles: []string{"distributed.yaml"}, Expect: expectLongNames},
		{Name: "release-named-distill", ReleaseName: "distill", Expect: expectReleaseNamedDistill},

		{Name: "refuse-two-coordinators", Set: []string{"coordinator.replicas=2"},
			WantError: "coordinator.replicas: must be 1 (the job store is one SQLite database), got 2"},
		{Name: "refuse-two-trainers", Set: []string{"trainer.replicas=2"}, WantError: "trainer.replicas: must be 1"},
		{Name: "refuse-shared-sqlite-cache", Set: []string{"teacherGateway.replicas=2"},
			WantError: "needs persistence.teacherCache.enabled=false"},
		{Name: "refuse-distributed-without-run-dir", Set: []string{"trainer.distributed.enabled=true"},
			WantError: "trainer.distributed.runDir: the run directory on the artifacts volume"},
		{Name: "refuse-run-dir-off-the-volume", Set: []string{"trainer.distributed.enabled=true",
			"trainer.distributed.runDir=/tmp/run"}, WantError: "must be under /data/artifacts/"},
		{Name: "refuse-zero-ranks", ValuesFiles: []string{"distributed.yaml"},
			Set: []string{"trainer.distributed.worldSize=0"}, WantError: "trainer.distributed.worldSize: must be >= 1"},
		{Name: "refuse-spec-of-another-world-size", ValuesFiles: []string{"distributed.yaml"},
			Set:       []string{"trainer.distributed.worldSize=3"},
			WantError: "trainer.distributed.spec: training.distributed.worldSize 4 does not match trainer.distributed.worldSize 3"},
		{Name: "refuse-unknown-probe-kind", Set: []string{"probes.kind=tcp"},
			WantError: `probes.kind: must be grpc or http, got "tcp"`},
		{Name: "refuse-old-kubernetes", KubeVersion: "v1.23.5", WantError: "incompatible with Kubernetes"},
		// A values file that drops a key the templates read: strict rendering names it.
		{Name: "refuse-missing-value", Set: []string{"coordinator.service=null"},
			WantError: `map has no entry for key "service"`},
	}
}

// VariantResult is the outcome of rendering and checking one variant.
type VariantResult struct {
	Objects  []*Object
	Notes    string
	Problems []string
}

// RunVariant renders the chart with a variant's values and checks the result. A variant with WantError
// passes when rendering fails with that message.
func RunVariant(c *Chart, testdata string, v Variant) VariantResult {
	var res VariantResult
	values := c.Values
	for _, f := range v.ValuesFiles {
		overlay, err := loadValuesFile(filepath.Join(testdata, "values", f))
		if err != nil {
			res.Problems = append(res.Problems, err.Error())
			return res
		}
		values = CoalesceValues(values, overlay)
	}
	if len(v.Set) > 0 {
		set := map[string]interface{}{}
		for _, s := range v.Set {
			if err := ParseSet(set, s); err != nil {
				res.Problems = append(res.Problems, err.Error())
				return res
			}
		}
		values = CoalesceValues(values, setNulls(set, v.Set))
	}
	release := v.ReleaseName
	if release == "" {
		release = "ml"
	}
	rendered, notes, err := Render(c, RenderOptions{ReleaseName: release, Namespace: testNamespace,
		Values: values, Strict: true, KubeVersion: v.KubeVersion})
	if v.WantError != "" {
		switch {
		case err == nil:
			res.Problems = append(res.Problems, fmt.Sprintf("rendered, but should fail with %q", v.WantError))
		case !strings.Contains(err.Error(), v.WantError):
			res.Problems = append(res.Problems, fmt.Sprintf("failed with %q, want a message containing %q", err, v.WantError))
		}
		return res
	}
	if err != nil {
		res.Problems = append(res.Problems, "render: "+err.Error())
		return res
	}
	res.Notes = notes
	if strings.TrimSpace(notes) == "" {
		res.Problems = append(res.Problems, "NOTES.txt rendered empty")
	}
	objs, err := ParseObjects(rendered)
	res.Objects = objs
	if err != nil {
		res.Problems = append(res.Problems, err.Error())
	}
	opts := v.External
	opts.Namespace = testNamespace
	res.Problems = append(res.Problems, CheckObjects(objs, opts)...)
	if v.Expect != nil {
		res.Problems = append(res.Problems, v.Expect(c, objs)...)
	}
	return res
}

// setNulls puts back the `key=null` entries ParseSet removes, so that coalescing deletes those keys.
func setNulls(set map[string]interface{}, exprs []string) map[string]interface{} {
	for _, e := range exprs {
		if !strings.HasSuffix(e, "=null") {
			continue
		}
		keys := strings.Split(strings.TrimSuffix(e, "=null"), ".")
		parentMap(set, keys)[keys[len(keys)-1]] = nil
	}
	return set
}

// CheckChartStatic runs the checks that need no rendering: every .Values reference is defined, and
// every values key is read.
func CheckChartStatic(c *Chart) []string {
	var problems []string
	refs, err := FindValuesRefs(c)
	if err != nil {
		return []string{err.Error()}
	}
	if len(refs) == 0 {
		problems = append(problems, "no .Values references found: the reference scan is broken")
	}
	problems = append(problems, CheckValuesRefs(refs, c.Values)...)
	mentioned, err := MentionedNames(c)
	if err != nil {
		return append(problems, err.Error())
	}
	problems = append(problems, CheckValuesUsed(c.Values, mentioned, opaqueValues)...)
	return problems
}

// --- expectations ------------------------------------------------------------------------------------

func byKind(objs []*Object, kind string) []*Object {
	var out []*Object
	for _, o := range objs {
		if o.Kind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func named(objs []*Object, kind, name string) *Object {
	for _, o := range objs {
		if o.Kind() == kind && o.Name() == name {
			return o
		}
	}
	return nil
}

func kinds(objs []*Object) string {
	count := map[string]int{}
	for _, o := range objs {
		count[o.Kind()]++
	}
	var parts []string
	for k, n := range count {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func expectKinds(objs []*Object, want string) []string {
	if got := kinds(objs); got != want {
		return []string{fmt.Sprintf("objects: got %s, want %s", got, want)}
	}
	return nil
}

// body is an object's document; nil for a missing object.
func body(o *Object) map[string]interface{} {
	if o == nil {
		return nil
	}
	return o.Body
}

func firstContainer(o *Object) map[string]interface{} {
	if o == nil {
		return nil
	}
	return mapAt(o.Body, "spec", "template", "spec", "containers", 0)
}

func configOf(objs []*Object, component string) map[string]interface{} {
	for _, o := range objs {
		if o.Kind() == "ConfigMap" && strings.HasSuffix(o.Name(), "-"+component+"-config") {
			cfg, _ := ParseValues([]byte(str(at(o.Body, "data", "config.yaml"))))
			return cfg
		}
	}
	return nil
}

func check(problems *[]string, ok bool, format string, args ...interface{}) {
	if !ok {
		*problems = append(*problems, fmt.Sprintf(format, args...))
	}
}

func expectDefault(c *Chart, objs []*Object) []string {
	p := expectKinds(objs, "ConfigMap=9 Deployment=5 PersistentVolumeClaim=3 PodDisruptionBudget=5 Secret=1 Service=5 ServiceAccount=1")
	coordinator := configOf(objs, "coordinator")
	check(&p, str(at(coordinator, "coordinator", "curator_address")) == "ml-distill-curator.ml.svc:50052",
		"coordinator.curator_address = %v", at(coordinator, "coordinator", "curator_address"))
	check(&p, str(at(coordinator, "coordinator", "database")) == "/data/coordinator/coordinator.db",
		"coordinator.database = %v", at(coordinator, "coordinator", "database"))
	gw := firstContainer(named(objs, "Deployment", "ml-distill-teacher-gateway"))
	check(&p, str(at(gw, "envFrom", 0, "secretRef", "name")) == "ml-distill-teacher-keys", "teacher gateway envFrom: %v", at(gw, "envFrom"))
	check(&p, at(named(objs, "Secret", "ml-distill-teacher-keys"), "stringData") == nil, "an empty key must not be written")
	trainer := firstContainer(named(objs, "Deployment", "ml-distill-trainer"))
	check(&p, at(trainer, "resources", "limits", "nvidia.com/gpu") == nil, "trainer asks for a GPU by default")
	check(&p, str(at(trainer, "image")) == "distill:0.1.0", "trainer image %v", at(trainer, "image"))
	check(&p, str(at(trainer, "startupProbe", "grpc", "port")) == "" && at(trainer, "startupProbe", "grpc", "port") == 50053,
		"trainer startupProbe: %v", at(trainer, "startupProbe"))
	check(&p, len(byKind(objs, "Job")) == 0, "a Job without trainer.distributed.enabled")
	files := c.Files.Glob("dashboards/*.json")
	dashboards := 0
	for _, o := range byKind(objs, "ConfigMap") {
		if str(at(o.Body, "metadata", "labels", "grafana_dashboard")) != "1" {
			continue
		}
		dashboards++
		for key, content := range mapAt(o.Body, "data") {
			check(&p, str(content) == strings.TrimRight(string(files["dashboards/"+key]), "\n"),
				"%s: data.%s is not dashboards/%s as it is", o.Name(), key, key)
		}
	}
	check(&p, len(files) > 0 && dashboards == len(files), "dashboard ConfigMaps: %d, want one per dashboards/*.json (%d)",
		dashboards, len(files))
	return p
}

func gpuLimit(o *Object) interface{} {
	return at(firstContainer(o), "resources", "limits", "nvidia.com/gpu")
}

func hasGPUToleration(o *Object) bool {
	for _, t := range listAt(o.Body, "spec", "template", "spec", "tolerations") {
		if str(at(t, "key")) == "nvidia.com/gpu" {
			return true
		}
	}
	return false
}

func expectGPU(c *Chart, objs []*Object) []string {
	var p []string
	trainer := named(objs, "Deployment", "ml-distill-trainer")
	inference := named(objs, "Deployment", "ml-distill-inference")
	curator := named(objs, "Deployment", "ml-distill-curator")
	check(&p, gpuLimit(trainer) == 1, "trainer GPU limit %v, want 1", gpuLimit(trainer))
	check(&p, gpuLimit(inference) == 2, "inference GPU limit %v, want 2", gpuLimit(inference))
	check(&p, gpuLimit(curator) == nil, "curator must not ask for GPUs")
	check(&p, hasGPUToleration(trainer) && hasGPUToleration(inference) && !hasGPUToleration(curator),
		"GPU tolerations belong to GPU pods only")
	check(&p, str(at(trainer.Body, "spec", "template", "spec", "runtimeClassName")) == "nvidia", "trainer runtimeClassName")
	check(&p, str(at(trainer.Body, "spec", "template", "spec", "nodeSelector", "nvidia.com/gpu.present")) == "true",
		"trainer nodeSelector: %v", at(trainer.Body, "spec", "template", "spec", "nodeSelector"))
	check(&p, str(at(firstContainer(trainer), "image")) == "ghcr.io/example/distill-cuda:0.1.0-cuda12",
		"trainer image %v", at(firstContainer(trainer), "image"))
	check(&p, str(at(firstContainer(curator), "image")) == "ghcr.io/example/distill:0.1.0", "curator image %v",
		at(firstContainer(curator), "image"))
	check(&p, str(at(inference.Body, "spec", "strategy", "type")) == "Recreate", "a GPU service must be Recreate")
	return p
}

func workerJob(objs []*Object) (*Object, map[string]string) {
	jobs := byKind(objs, "Job")
	if len(jobs) != 1 {
		return nil, nil
	}
	env := map[string]string{}
	for _, e := range listAt(firstContainer(jobs[0]), "env") {
		env[str(at(e, "name"))] = str(at(e, "value"))
	}
	return jobs[0], env
}

func expectDistributed(c *Chart, objs []*Object) []string {
	var p []string
	job, env := workerJob(objs)
	if job == nil {
		return []string{"want one Job"}
	}
	check(&p, job.Name() == "ml-distill-trainer-worker", "job name %s", job.Name())
	completions, _ := intAt(job.Body, "spec", "completions")
	check(&p, completions == 4, "completions %d, want 4", completions)
	check(&p, env["WORLD_SIZE"] == "4" && env["MASTER_ADDR"] == "ml-distill-trainer-worker-0.ml-distill-trainer-worker" &&
		env["MASTER_PORT"] == "29400", "worker env %v", env)
	ct := firstContainer(job)
	check(&p, strings.Join(toStrings(listAt(ct, "command")), " ") == "distill-trainer trainer-worker" &&
		strings.Join(toStrings(listAt(ct, "args")), " ") == "--run-dir /data/artifacts/runs/svamp-base --threads 4",
		"worker command %v %v", at(ct, "command"), at(ct, "args"))
	spec := named(objs, "ConfigMap", "ml-distill-trainer-worker-spec")
	check(&p, spec != nil && strings.Contains(str(at(spec.Body, "data", "spec.json")), `"objective": "OBJECTIVE_STEP_BY_STEP"`),
		"the spec ConfigMap holds the RunSpec")
	check(&p, len(listAt(job.Body, "spec", "template", "spec", "initContainers")) == 1, "the spec init container")
	pdb := named(objs, "PodDisruptionBudget", "ml-distill-trainer-worker")
	n, _ := intAt(body(pdb), "spec", "minAvailable")
	check(&p, n == 4, "worker PDB minAvailable %d, want 4", n)
	check(&p, gpuLimit(job) == nil, "workers ask for GPUs without trainer.distributed.gpu")
	return p
}

func expectDistributedGPU(c *Chart, objs []*Object) []string {
	var p []string
	job, env := workerJob(objs)
	if job == nil {
		return []string{"want one Job"}
	}
	completions, _ := intAt(job.Body, "spec", "completions")
	check(&p, completions == 8 && env["WORLD_SIZE"] == "8", "completions %d WORLD_SIZE %s, want 8", completions, env["WORLD_SIZE"])
	check(&p, gpuLimit(job) == 1 && hasGPUToleration(job), "worker GPU limit %v, toleration %v", gpuLimit(job), hasGPUToleration(job))
	check(&p, str(at(firstContainer(job), "image")) == "ghcr.io/example/distill-cuda:0.1.0-cuda12", "workers run the trainer's image")
	// threads 0: the CPUs the pod requests (1500m: 1).
	check(&p, strings.Join(toStrings(listAt(firstContainer(job), "args")), " ") == "--run-dir /data/artifacts/runs/svamp-base --threads 1",
		"worker args %v", at(firstContainer(job), "args"))
	return p
}

func expectMonitoring(c *Chart, objs []*Object) []string {
	var p []string
	sm := byKind(objs, "ServiceMonitor")
	check(&p, len(sm) == 1 && str(at(sm[0].Body, "metadata", "labels", "release")) == "kube-prometheus-stack",
		"one ServiceMonitor labelled for the Prometheus")
	rules := byKind(objs, "PrometheusRule")
	if len(rules) != 1 {
		return append(p, "want one PrometheusRule")
	}
	// The groups are the rule files' groups, unchanged.
	var want []interface{}
	for _, data := range c.Files.Glob("rules/*.yml") {
		var file map[string]interface{}
		if err := yaml3.Unmarshal(data, &file); err != nil {
			return append(p, err.Error())
		}
		want = append(want, listAt(file, "groups")...)
	}
	got := listAt(rules[0].Body, "spec", "groups")
	check(&p, len(want) > 0 && reflect.DeepEqual(groupsByName(got), groupsByName(want)),
		"PrometheusRule groups differ from rules/*.yml (%d groups, want %d)", len(got), len(want))
	alerts := map[string]bool{}
	for _, g := range got {
		for _, r := range listAt(g, "rules") {
			alerts[str(at(r, "alert"))] = true
		}
	}
	for _, a := range []string{"DistillTrainerStalled", "DistillTrainerNonFiniteLoss"} {
		check(&p, alerts[a], "PrometheusRule lacks alert %s", a)
	}
	return p
}

func groupsByName(groups []interface{}) map[string]interface{} {
	m := map[string]interface{}{}
	for _, g := range groups {
		m[str(at(g, "name"))] = g
	}
	return m
}

func expectExistingSecrets(c *Chart, objs []*Object) []string {
	var p []string
	check(&p, len(byKind(objs, "Secret")) == 0, "existing Secrets must not be created again")
	gw := firstContainer(named(objs, "Deployment", "ml-distill-teacher-gateway"))
	check(&p, str(at(gw, "envFrom", 0, "secretRef", "name")) == "teacher-keys", "envFrom %v", at(gw, "envFrom"))
	for _, pvc := range byKind(objs, "PersistentVolumeClaim") {
		check(&p, !strings.HasSuffix(pvc.Name(), "-artifacts"), "existingClaim: the artifacts PVC must not be created")
	}
	return p
}

func expectAuth(c *Chart, objs []*Object) []string {
	var p []string
	secret := named(objs, "Secret", "ml-distill-auth")
	check(&p, secret != nil && len(str(at(secret.Body, "stringData", "token"))) == 40, "a generated 40-character token")
	for _, component := range []string{"coordinator", "teacher-gateway", "curator", "trainer", "inference"} {
		cfg := configOf(objs, component)
		check(&p, str(at(cfg, "server", "auth", "token_env")) == "DISTILL_TOKEN", "%s: server.auth.token_env", component)
	}
	check(&p, str(at(configOf(objs, "coordinator"), "coordinator", "service_token_env")) == "DISTILL_TOKEN",
		"coordinator.service_token_env")
	return p
}

func expectMinimal(c *Chart, objs []*Object) []string {
	p := expectKinds(objs, "ConfigMap=5 Deployment=5 Secret=1 Service=5")
	for _, d := range byKind(objs, "Deployment") {
		pod := mapAt(d.Body, "spec", "template", "spec")
		check(&p, str(pod["serviceAccountName"]) == "default", "%s: serviceAccountName %v", d.Name(), pod["serviceAccountName"])
		check(&p, at(firstContainer(d), "readinessProbe", "httpGet", "path") == "/readyz", "%s: readiness on /readyz", d.Name())
		check(&p, str(at(firstContainer(d), "image")) == "distill@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			"%s: a digest wins over the tag: %v", d.Name(), at(firstContainer(d), "image"))
		check(&p, at(d.Body, "spec", "template", "metadata", "annotations", "prometheus.io/scrape") == nil,
			"%s: no scrape annotations", d.Name())
	}
	return p
}

func expectScaled(c *Chart, objs []*Object) []string {
	var p []string
	for name, want := range map[string]int{"ml-distill-curator": 3, "ml-distill-inference": 2, "ml-distill-teacher-gateway": 2} {
		n, _ := intAt(body(named(objs, "Deployment", name)), "spec", "replicas")
		check(&p, n == want, "%s replicas %d, want %d", name, n, want)
	}
	gw := named(objs, "Deployment", "ml-distill-teacher-gateway")
	check(&p, str(at(gw.Body, "spec", "strategy", "type")) == "RollingUpdate", "a cache-less gateway rolls")
	return p
}

func expectConfigOverrides(c *Chart, objs []*Object) []string {
	var p []string
	coordinator := configOf(objs, "coordinator")
	check(&p, at(coordinator, "coordinator", "max_running_jobs") == float64(3), "max_running_jobs %v", at(coordinator, "coordinator", "max_running_jobs"))
	check(&p, str(at(coordinator, "coordinator", "trainer_address")) == "ml-distill-trainer.ml.svc:50053", "overrides keep the chart's addresses")
	check(&p, str(at(coordinator, "log", "level")) == "debug", "log.level %v", at(coordinator, "log", "level"))
	inference := configOf(objs, "inference")
	check(&p, str(at(inference, "inference", "models", 0, "artifact")) == "artifact://runs/run-0123456789ab/model/",
		"inference models %v", at(inference, "inference", "models"))
	check(&p, str(at(inference, "inference", "artifact_root")) == "/data/artifacts", "inference artifact_root")
	gw := configOf(objs, "teacher-gateway")
	check(&p, str(at(gw, "teacher_gateway", "backends", 0, "api_key_env")) == "OPENAI_API_KEY", "gateway backends %v", at(gw, "teacher_gateway", "backends"))
	trainer := configOf(objs, "trainer")
	check(&p, at(trainer, "trainer", "forward_worker_logs") == false, "trainer forward_worker_logs %v", at(trainer, "trainer", "forward_worker_logs"))
	return p
}

func expectLongNames(c *Chart, objs []*Object) []string {
	var p []string
	job, env := workerJob(objs)
	if job == nil {
		return []string{"want one Job"}
	}
	check(&p, env["MASTER_ADDR"] == job.Name()+"-0."+job.Name(), "MASTER_ADDR %s for job %s", env["MASTER_ADDR"], job.Name())
	for _, o := range objs {
		check(&p, strings.HasPrefix(o.Name(), "a-release-name-long-enough-to-need-cutti"), "%s: names share the cut prefix", o.ID())
	}
	return p
}

func expectReleaseNamedDistill(c *Chart, objs []*Object) []string {
	var p []string
	check(&p, named(objs, "Deployment", "distill-coordinator") != nil, "release \"distill\" names distill-coordinator")
	return p
}

func loadValuesFile(path string) (map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v, err := ParseValues(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return v, nil
}
