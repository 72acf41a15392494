package main

// Tests of the renderer (it must behave as Helm does where the chart depends on it) and of the checks
// (each must catch the problem it is for: a check that never fails proves nothing).

import (
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

var (
	chartFlag    = flag.String("chart", "", "the chart directory (default: helm/distill of this repository)")
	testdataFlag = flag.String("testdata", "", "tests/deploy/helm/testdata (default: beside this file)")
)

func repoRoot(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
}

func chartDir(t *testing.T) string {
	if *chartFlag != "" {
		return *chartFlag
	}
	return filepath.Join(repoRoot(t), "helm", "distill")
}

func testdataDir(t *testing.T) string {
	if *testdataFlag != "" {
		return *testdataFlag
	}
	return filepath.Join(repoRoot(t), "tests", "deploy", "helm", "testdata")
}

func loadChart(t *testing.T) *Chart {
	t.Helper()
	c, err := LoadChart(chartDir(t))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// --- the chart -----------------------------------------------------------------------------------------

func TestChartValuesReferencesAreDefined(t *testing.T) {
	for _, p := range CheckChartStatic(loadChart(t)) {
		t.Error(p)
	}
}

func TestChartVariants(t *testing.T) {
	c := loadChart(t)
	for _, v := range Variants() {
		v := v
		t.Run(v.Name, func(t *testing.T) {
			for _, p := range RunVariant(c, testdataDir(t), v).Problems {
				t.Error(p)
			}
		})
	}
}

// --- negative tests: the static checks -------------------------------------------------------------

// copyChart copies the chart (links resolved) into a temporary directory to break it there.
func copyChart(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "distill")
	src := chartDir(t)
	err := walkFollowingLinks(src, "", func(rel string, data []byte) {
		path := filepath.Join(dst, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// expectStaticProblems loads the chart in dir and fails the test unless CheckChartStatic reports each of
// wants; returns the chart.
func expectStaticProblems(t *testing.T, dir string, wants ...string) *Chart {
	t.Helper()
	c, err := LoadChart(dir)
	if err != nil {
		t.Fatal(err)
	}
	problems := strings.Join(CheckChartStatic(c), "\n")
	for _, want := range wants {
		if !strings.Contains(problems, want) {
			t.Errorf("want %q in:\n%s", want, problems)
		}
	}
	return c
}

func TestUndefinedValueInATemplateIsReported(t *testing.T) {
	dir := copyChart(t)
	bad := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n" +
		"  a: {{ .Values.trainer.doesNotExist | quote }}\n" +
		"  {{- with .Values.coordinator }}\n  b: {{ $.Values.nope.deeper | quote }}\n  {{- end }}\n" +
		"  c: {{ .Values.log.level.more | quote }}\n"
	if err := os.WriteFile(filepath.Join(dir, "templates", "zz-bad.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	c := expectStaticProblems(t, dir,
		"distill/templates/zz-bad.yaml:6: .Values.trainer.doesNotExist is not defined in values.yaml",
		"distill/templates/zz-bad.yaml:8: .Values.nope.deeper is not defined in values.yaml",
		"distill/templates/zz-bad.yaml:10: .Values.log.level.more: .Values.log.level is a string, not a map")
	// Strict rendering refuses it too (the first missing key stops it).
	_, _, err := Render(c, RenderOptions{ReleaseName: "ml", Namespace: "ml", Values: c.Values, Strict: true})
	if err == nil || !strings.Contains(err.Error(), `map has no entry for key "doesNotExist"`) {
		t.Errorf("strict render: %v", err)
	}
	// Helm's default (missingkey=zero) passes over .Values.trainer.doesNotExist (a missing key of an
	// existing map renders as ""), which is why the checks render strictly; only the read below a
	// missing map fails there.
	_, _, err = Render(c, RenderOptions{ReleaseName: "ml", Namespace: "ml", Values: c.Values})
	if err == nil || !strings.Contains(err.Error(), "nil pointer evaluating interface {}.deeper") ||
		strings.Contains(err.Error(), "doesNotExist") {
		t.Errorf("non-strict render: %v", err)
	}
}

func TestUnusedValueIsReported(t *testing.T) {
	dir := copyChart(t)
	values, err := os.ReadFile(filepath.Join(dir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(values), "\ncurator:\n", "\ncurator:\n  retiredOption: true\n", 1) + "\nforgottenKnob: 3\n"
	values = []byte(edited)
	if err := os.WriteFile(filepath.Join(dir, "values.yaml"), values, 0o644); err != nil {
		t.Fatal(err)
	}
	expectStaticProblems(t, dir,
		"values.yaml: forgottenKnob is not read by any template",
		"values.yaml: curator.retiredOption is not read by any template")
}

func TestAVariantThatDoesNotFailAsExpectedIsReported(t *testing.T) {
	c := loadChart(t)
	res := RunVariant(c, testdataDir(t), Variant{Name: "x", Set: []string{"coordinator.replicas=1"}, WantError: "must be 1"})
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "rendered, but should fail") {
		t.Errorf("problems: %v", res.Problems)
	}
	res = RunVariant(c, testdataDir(t), Variant{Name: "x", Set: []string{"coordinator.replicas=3"}, WantError: "something else"})
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "want a message containing") {
		t.Errorf("problems: %v", res.Problems)
	}
}

// --- negative tests: the manifest checks ---------------------------------------------------------------

// renderDefault renders the chart with the distributed Job on, so every kind of object is there.
func renderDefault(t *testing.T) []*Object {
	t.Helper()
	c := loadChart(t)
	values := CoalesceValues(c.Values, mustValues(t, `
trainer:
  distributed:
    enabled: true
    runDir: /data/artifacts/runs/r
metrics:
  serviceMonitor:
    enabled: true
  prometheusRule:
    enabled: true
auth:
  enabled: true
`))
	rendered, _, err := Render(c, RenderOptions{ReleaseName: "ml", Namespace: testNamespace, Values: values, Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := ParseObjects(rendered)
	if err != nil {
		t.Fatal(err)
	}
	if problems := CheckObjects(objs, CheckOptions{Namespace: testNamespace}); len(problems) > 0 {
		t.Fatalf("the unbroken chart has problems:\n%s", strings.Join(problems, "\n"))
	}
	return objs
}

func mustValues(t *testing.T, y string) map[string]interface{} {
	t.Helper()
	v, err := ParseValues([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func object(t *testing.T, objs []*Object, kind, name string) map[string]interface{} {
	t.Helper()
	o := named(objs, kind, name)
	if o == nil {
		t.Fatalf("no %s/%s", kind, name)
	}
	return o.Body
}

func container(t *testing.T, objs []*Object, kind, name string) map[string]interface{} {
	t.Helper()
	return mapAt(object(t, objs, kind, name), "spec", "template", "spec", "containers", 0)
}

func TestChecksCatchBrokenManifests(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(t *testing.T, objs []*Object) []*Object
		want   string
	}{
		{"selector does not match the pod labels", func(t *testing.T, objs []*Object) []*Object {
			mapAt(object(t, objs, "Deployment", "ml-distill-curator"), "spec", "selector", "matchLabels")["app.kubernetes.io/component"] = "curater"
			return objs
		}, "Deployment/ml-distill-curator: spec.selector.matchLabels app.kubernetes.io/component=curater does not match"},
		{"container runs as root", func(t *testing.T, objs []*Object) []*Object {
			mapAt(container(t, objs, "Deployment", "ml-distill-trainer"), "securityContext")["runAsUser"] = 0
			return objs
		}, "Deployment/ml-distill-trainer: containers[0] trainer: runAsUser must be a non-zero UID"},
		{"writable root filesystem", func(t *testing.T, objs []*Object) []*Object {
			delete(mapAt(container(t, objs, "Job", "ml-distill-trainer-worker"), "securityContext"), "readOnlyRootFilesystem")
			return objs
		}, "Job/ml-distill-trainer-worker: containers[0] worker: readOnlyRootFilesystem must be true"},
		{"capabilities kept", func(t *testing.T, objs []*Object) []*Object {
			delete(mapAt(container(t, objs, "Deployment", "ml-distill-inference"), "securityContext"), "capabilities")
			return objs
		}, "containers[0] inference: capabilities must drop ALL"},
		{"volume names a ConfigMap nobody renders", func(t *testing.T, objs []*Object) []*Object {
			v := mapAt(object(t, objs, "Deployment", "ml-distill-coordinator"), "spec", "template", "spec", "volumes", 0)
			v["configMap"].(map[string]interface{})["name"] = "ml-distill-coordinator-cfg"
			return objs
		}, `volume config: ConfigMap "ml-distill-coordinator-cfg" is not rendered`},
		{"volume names a PVC nobody renders", func(t *testing.T, objs []*Object) []*Object {
			for i, o := range objs {
				if o.ID() == "PersistentVolumeClaim/ml-distill-artifacts" {
					return append(objs[:i], objs[i+1:]...)
				}
			}
			t.Fatal("no artifacts PVC")
			return nil
		}, `PersistentVolumeClaim "ml-distill-artifacts" is not rendered`},
		{"mount of an undeclared volume", func(t *testing.T, objs []*Object) []*Object {
			ct := container(t, objs, "Deployment", "ml-distill-curator")
			ct["volumeMounts"] = append(listAt(ct, "volumeMounts"), map[string]interface{}{"name": "cache", "mountPath": "/cache"})
			return objs
		}, `containers[0] curator: volumeMount "cache" names no volume of the pod`},
		{"probe on a port the container does not declare", func(t *testing.T, objs []*Object) []*Object {
			mapAt(container(t, objs, "Deployment", "ml-distill-curator"), "livenessProbe", "httpGet")["port"] = "admin"
			return objs
		}, `containers[0] curator livenessProbe: port "admin" is not a named port of the container`},
		{"gRPC probe on the wrong port number", func(t *testing.T, objs []*Object) []*Object {
			mapAt(container(t, objs, "Deployment", "ml-distill-curator"), "readinessProbe", "grpc")["port"] = 50053
			return objs
		}, "containers[0] curator readinessProbe: port 50053 is not a port of the container"},
		{"service without readiness", func(t *testing.T, objs []*Object) []*Object {
			delete(container(t, objs, "Deployment", "ml-distill-curator"), "readinessProbe")
			return objs
		}, "containers[0] curator: readinessProbe is required for a service"},
		{"no /tmp", func(t *testing.T, objs []*Object) []*Object {
			ct := container(t, objs, "Deployment", "ml-distill-curator")
			var kept []interface{}
			for _, m := range listAt(ct, "volumeMounts") {
				if str(at(m, "mountPath")) != "/tmp" {
					kept = append(kept, m)
				}
			}
			ct["volumeMounts"] = kept
			return objs
		}, "containers[0] curator: /tmp must be an emptyDir"},
		{"empty image tag", func(t *testing.T, objs []*Object) []*Object {
			container(t, objs, "Deployment", "ml-distill-curator")["image"] = "distill:"
			return objs
		}, `image "distill:" is not a valid image reference`},
		{"Service selects nothing", func(t *testing.T, objs []*Object) []*Object {
			mapAt(object(t, objs, "Service", "ml-distill-inference"), "spec", "selector")["app.kubernetes.io/component"] = "infer"
			return objs
		}, "Service/ml-distill-inference: spec.selector map[app.kubernetes.io/component:infer"},
		{"Service targets a port the pods lack", func(t *testing.T, objs []*Object) []*Object {
			mapAt(object(t, objs, "Service", "ml-distill-inference"), "spec", "ports", 2)["targetPort"] = "openai"
			return objs
		}, "Service/ml-distill-inference: ports[2] (http): targetPort openai is not a container port of Deployment/ml-distill-inference"},
		{"Job ranks not all at once", func(t *testing.T, objs []*Object) []*Object {
			mapAt(object(t, objs, "Job", "ml-distill-trainer-worker"), "spec")["parallelism"] = 1
			return objs
		}, "Job/ml-distill-trainer-worker: spec.completions (2) and spec.parallelism (1) must be the same positive integer"},
		{"Job not indexed", func(t *testing.T, objs []*Object) []*Object {
			mapAt(object(t, objs, "Job", "ml-distill-trainer-worker"), "spec")["completionMode"] = "NonIndexed"
			return objs
		}, "spec.completionMode must be Indexed"},
		{"WORLD_SIZE disagrees with completions", func(t *testing.T, objs []*Object) []*Object {
			mapAt(object(t, objs, "Job", "ml-distill-trainer-worker"), "spec")["completions"] = 3
			mapAt(object(t, objs, "Job", "ml-distill-trainer-worker"), "spec")["parallelism"] = 3
			return objs
		}, `container worker: WORLD_SIZE "2" must equal spec.completions 3`},
		{"RANK not from the completion index", func(t *testing.T, objs []*Object) []*Object {
			mapAt(container(t, objs, "Job", "ml-distill-trainer-worker"), "env", 0)["valueFrom"] = map[string]interface{}{
				"fieldRef": map[string]interface{}{"fieldPath": "metadata.name"}}
			return objs
		}, "container worker: RANK must come from the fieldRef"},
		{"MASTER_ADDR is not rank 0", func(t *testing.T, objs []*Object) []*Object {
			mapAt(container(t, objs, "Job", "ml-distill-trainer-worker"), "env", 2)["value"] = "ml-distill-trainer"
			return objs
		}, `container worker: MASTER_ADDR "ml-distill-trainer" must be rank 0's pod`},
		{"subdomain Service not headless", func(t *testing.T, objs []*Object) []*Object {
			delete(mapAt(object(t, objs, "Service", "ml-distill-trainer-worker"), "spec"), "clusterIP")
			return objs
		}, "Service ml-distill-trainer-worker (the subdomain) must be headless"},
		{"subdomain names no Service", func(t *testing.T, objs []*Object) []*Object {
			mapAt(object(t, objs, "Job", "ml-distill-trainer-worker"), "spec", "template", "spec")["subdomain"] = "workers"
			return objs
		}, `subdomain "workers" names no Service`},
		{"name over 63 characters", func(t *testing.T, objs []*Object) []*Object {
			mapAt(object(t, objs, "ConfigMap", "ml-distill-curator-config"), "metadata")["name"] = strings.Repeat("x", 64)
			return objs
		}, "is not a DNS-1123 label"},
		{"upper-case name", func(t *testing.T, objs []*Object) []*Object {
			mapAt(object(t, objs, "Secret", "ml-distill-auth"), "metadata")["name"] = "ML-auth"
			return objs
		}, `metadata.name "ML-auth" is not a DNS-1123 label`},
		{"removed API version", func(t *testing.T, objs []*Object) []*Object {
			object(t, objs, "PodDisruptionBudget", "ml-distill-curator")["apiVersion"] = "policy/v1beta1"
			return objs
		}, "PodDisruptionBudget/ml-distill-curator: apiVersion policy/v1beta1, want policy/v1"},
		{"PVC without access modes", func(t *testing.T, objs []*Object) []*Object {
			delete(mapAt(object(t, objs, "PersistentVolumeClaim", "ml-distill-artifacts"), "spec"), "accessModes")
			return objs
		}, "PersistentVolumeClaim/ml-distill-artifacts: spec.accessModes is empty"},
		{"PVC size not a quantity", func(t *testing.T, objs []*Object) []*Object {
			mapAt(object(t, objs, "PersistentVolumeClaim", "ml-distill-artifacts"), "spec", "resources", "requests")["storage"] = "50 gigs"
			return objs
		}, `spec.resources.requests.storage "50 gigs" is not a quantity`},
		{"empty ConfigMap", func(t *testing.T, objs []*Object) []*Object {
			delete(object(t, objs, "ConfigMap", "ml-distill-curator-config"), "data")
			return objs
		}, "ConfigMap/ml-distill-curator-config: has no data"},
		{"dashboard that is not JSON", func(t *testing.T, objs []*Object) []*Object {
			mapAt(object(t, objs, "ConfigMap", "ml-distill-dashboard-training"), "data")["training.json"] = "{\"panels\": ["
			return objs
		}, "data.training.json is not valid JSON"},
		{"config listens on another port", func(t *testing.T, objs []*Object) []*Object {
			data := mapAt(object(t, objs, "ConfigMap", "ml-distill-curator-config"), "data")
			data["config.yaml"] = strings.Replace(str(data["config.yaml"]), "0.0.0.0:50052", "0.0.0.0:50059", 1)
			return objs
		}, `Deployment/ml-distill-curator: /etc/distill/config.yaml: server.grpc_address "0.0.0.0:50059" listens on another port than the container declares (50052)`},
		{"coordinator dials a Service that does not exist", func(t *testing.T, objs []*Object) []*Object {
			data := mapAt(object(t, objs, "ConfigMap", "ml-distill-coordinator-config"), "data")
			data["config.yaml"] = strings.Replace(str(data["config.yaml"]), "ml-distill-curator.ml.svc", "curator.ml.svc", 1)
			return objs
		}, `coordinator.curator_address "curator.ml.svc:50052" is not a rendered Service in namespace ml`},
		{"coordinator dials the wrong port", func(t *testing.T, objs []*Object) []*Object {
			data := mapAt(object(t, objs, "ConfigMap", "ml-distill-coordinator-config"), "data")
			data["config.yaml"] = strings.Replace(str(data["config.yaml"]), "trainer.ml.svc:50053", "trainer.ml.svc:50054", 1)
			return objs
		}, `Service ml-distill-trainer has no port 50054`},
		{"env from a Secret nobody renders", func(t *testing.T, objs []*Object) []*Object {
			mapAt(container(t, objs, "Deployment", "ml-distill-teacher-gateway"), "envFrom", 0, "secretRef")["name"] = "keys"
			return objs
		}, `envFrom Secret "keys" is not rendered`},
		{"env from a missing Secret key", func(t *testing.T, objs []*Object) []*Object {
			mapAt(container(t, objs, "Deployment", "ml-distill-curator"), "env", 0, "valueFrom", "secretKeyRef")["key"] = "tokn"
			return objs
		}, `env DISTILL_TOKEN: Secret "ml-distill-auth" has no key "tokn"`},
		{"GPU request that is not whole", func(t *testing.T, objs []*Object) []*Object {
			mapAt(container(t, objs, "Deployment", "ml-distill-inference"), "resources", "limits")["nvidia.com/gpu"] = "0.5"
			return objs
		}, "resources.limits.nvidia.com/gpu must be an integer"},
		{"template formatting artifact", func(t *testing.T, objs []*Object) []*Object {
			mapAt(object(t, objs, "Deployment", "ml-distill-curator"), "metadata", "labels")["app.kubernetes.io/version"] = "%!s(float64=1)"
			return objs
		}, "template formatting artifact"},
		{"ServiceMonitor scrapes a port the Services lack", func(t *testing.T, objs []*Object) []*Object {
			mapAt(object(t, objs, "ServiceMonitor", "ml-distill"), "spec", "endpoints", 0)["port"] = "prometheus"
			return objs
		}, `endpoint port "prometheus" is not a port of Service/ml-distill-coordinator`},
		{"PrometheusRule with a nameless rule", func(t *testing.T, objs []*Object) []*Object {
			r := mapAt(object(t, objs, "PrometheusRule", "ml-distill"), "spec", "groups", 0, "rules", 0)
			delete(r, "alert")
			delete(r, "record")
			return objs
		}, "needs exactly one of alert, record"},
		{"PodDisruptionBudget selecting nothing", func(t *testing.T, objs []*Object) []*Object {
			mapAt(object(t, objs, "PodDisruptionBudget", "ml-distill-curator"), "spec", "selector", "matchLabels")["app.kubernetes.io/instance"] = "other"
			return objs
		}, "PodDisruptionBudget/ml-distill-curator: spec.selector selects no workload's pods"},
		{"two objects with one name", func(t *testing.T, objs []*Object) []*Object {
			return append(objs, &Object{Source: "dup", Body: deepCopyMap(object(t, objs, "Service", "ml-distill-curator"))})
		}, "dup Service/ml-distill-curator: same kind and name as"},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			objs := tc.mutate(t, renderDefault(t))
			problems := strings.Join(CheckObjects(objs, CheckOptions{Namespace: testNamespace}), "\n")
			if !strings.Contains(problems, tc.want) {
				t.Errorf("want a problem containing %q; got:\n%s", tc.want, problems)
			}
		})
	}
}

func TestParseObjectsRejectsInvalidYAML(t *testing.T) {
	_, err := ParseObjects([]Rendered{{Source: "t.yaml", Documents: []string{"a: 1\n  b: 2\n"}}})
	if err == nil || !strings.Contains(err.Error(), "t.yaml#1: not valid YAML") {
		t.Errorf("err = %v", err)
	}
	_, err = ParseObjects([]Rendered{{Source: "t.yaml", Documents: []string{"a: 1\na: 2\n"}}})
	if err == nil || !strings.Contains(err.Error(), `mapping key "a" already defined`) {
		t.Errorf("duplicate key: err = %v", err)
	}
}

// --- the renderer behaves like Helm ------------------------------------------------------------------

func renderText(t *testing.T, files map[string]string, values string, strict bool) ([]Rendered, string, error) {
	t.Helper()
	dir := t.TempDir()
	files["Chart.yaml"] = "apiVersion: v2\nname: demo\nversion: 1.2.3\nappVersion: \"4.5\"\nkubeVersion: \">=1.20.0-0\"\n"
	files["values.yaml"] = values
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := LoadChart(dir)
	if err != nil {
		t.Fatal(err)
	}
	return Render(c, RenderOptions{ReleaseName: "rel", Namespace: "ns", Values: c.Values, Strict: strict})
}

func TestRendererMatchesHelm(t *testing.T) {
	rendered, notes, err := renderText(t, map[string]string{
		"templates/_h.tpl": `{{- define "demo.name" -}}{{ .Chart.Name }}-{{ .Release.Name }}{{- end }}`,
		"templates/a.yaml": `# toYaml sorts keys, keeps integers whole, does not indent lists under a key
{{- /* comment */}}
a: {{ include "demo.name" . }}
b:
  {{- toYaml .Values.m | nindent 2 }}
c: {{ .Values.big }}
d: {{ tpl "{{ .Release.Namespace }}" . }}
e: {{ .Chart.AppVersion }} {{ .Chart.Version }} {{ .Template.Name }} {{ .Capabilities.APIVersions.Has "apps/v1" }}
f: {{ (fromYaml "x: 5").x | printf "%T" }}
g: {{ .Files.Get "files/x.txt" | trim }} {{ len (.Files.Glob "files/*.txt") }}
h: {{ .Values.missing }}
---
i: 1
`,
		"templates/NOTES.txt": "release {{ .Release.Name }}",
		"files/x.txt":         "hello\n",
		"files/y.txt":         "world\n",
	}, "m: {z: 1, a: [1, 2], big: 67108864}\nbig: 67108864\n", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rendered) != 1 || len(rendered[0].Documents) != 2 {
		t.Fatalf("rendered %+v", rendered)
	}
	want := `# toYaml sorts keys, keeps integers whole, does not indent lists under a key
a: demo-rel
b:
  a:
  - 1
  - 2
  big: 67108864
  z: 1
c: 6.7108864e+07
d: ns
e: 4.5 1.2.3 demo/templates/a.yaml true
f: float64
g: hello 2
h:
`
	if rendered[0].Documents[0] != want {
		t.Errorf("got:\n%s\nwant:\n%s", rendered[0].Documents[0], want)
	}
	if rendered[0].Documents[1] != "i: 1\n" {
		t.Errorf("second document %q", rendered[0].Documents[1])
	}
	if notes != "release rel" {
		t.Errorf("notes %q", notes)
	}
}

func TestRendererFailures(t *testing.T) {
	_, _, err := renderText(t, map[string]string{
		"templates/a.yaml": `x: {{ required "image.tag is required" .Values.tag }}`}, "tag: \"\"\n", false)
	if err == nil || !strings.HasPrefix(err.Error(), "image.tag is required (demo/templates/a.yaml:1:") {
		t.Errorf("required: %v", err)
	}
	_, _, err = renderText(t, map[string]string{"templates/a.yaml": `{{ fail "no way" }}`}, "", false)
	if err == nil || !strings.HasPrefix(err.Error(), "no way") {
		t.Errorf("fail: %v", err)
	}
	_, _, err = renderText(t, map[string]string{"templates/a.yaml": `{{ env "HOME" }}`}, "", false)
	if err == nil || !strings.Contains(err.Error(), `function "env" not defined`) {
		t.Errorf("env must not exist (Helm removes it): %v", err)
	}
	_, _, err = renderText(t, map[string]string{"templates/a.yaml": `{{ .Values.a.b }}`}, "a: {}\n", true)
	if err == nil || !strings.Contains(err.Error(), `map has no entry for key "b"`) {
		t.Errorf("strict: %v", err)
	}
}

func TestValuesCoalesceAsHelmDoes(t *testing.T) {
	base := mustValues(t, "a: {b: 1, c: 2, l: [1, 2]}\nd: x\n")
	got := CoalesceValues(base, mustValues(t, "a: {c: 3, l: [9]}\nd: null\ne: true\n"))
	if toJSON(got) != `{"a":{"b":1,"c":3,"l":[9]},"e":true}` {
		t.Errorf("coalesced %s", toJSON(got))
	}
	if toJSON(base) != `{"a":{"b":1,"c":2,"l":[1,2]},"d":"x"}` {
		t.Errorf("base was modified: %s", toJSON(base))
	}
	set := map[string]interface{}{}
	for _, s := range []string{"x.y=3", "x.z=true", "w=abc"} {
		if err := ParseSet(set, s); err != nil {
			t.Fatal(err)
		}
	}
	if toJSON(set) != `{"w":"abc","x":{"y":3,"z":true}}` {
		t.Errorf("--set %s", toJSON(set))
	}
}
