package main

// A stand-in for `helm template`: Helm 3's template engine (helm.sh/helm/v3/pkg/engine) rebuilt on Go's
// text/template and sprig, the two libraries Helm itself renders with. What it reproduces:
//   - the function map: sprig's TxtFuncMap without env/expandenv, plus Helm's include, tpl, required,
//     toYaml, fromYaml, fromYamlArray, toJson, fromJson, fromJsonArray, lookup (always empty: no
//     cluster) and toToml (refused);
//   - the built-in objects: .Values, .Release, .Chart (Chart.yaml with Helm's field names),
//     .Capabilities (KubeVersion, APIVersions.Has, HelmVersion), .Files, .Template;
//   - every file of templates/ parsed into one template set (so `define`s are shared), files whose name
//     starts with "_" are not rendered, NOTES.txt is rendered apart, "<no value>" is blanked, and the
//     output is split into documents at "---" lines;
//   - the chart's kubeVersion constraint, checked against the Kubernetes version rendered for.
// Strict mode is `helm lint --strict`'s missingkey=error: reading a map key that does not exist fails.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/semver"
	"github.com/Masterminds/sprig"
	yaml2 "gopkg.in/yaml.v2"
)

// RenderOptions are what `helm template` takes from its flags.
type RenderOptions struct {
	ReleaseName string
	Namespace   string
	// The values after coalescing user values over the chart's.
	Values map[string]interface{}
	// missingkey=error instead of Helm's default missingkey=zero.
	Strict bool
	// e.g. "v1.29.0".
	KubeVersion string
	// API versions the cluster offers beyond the built-in ones (helm template --api-versions).
	APIVersions []string
}

// Rendered is the output of one template file.
type Rendered struct {
	// "<chart>/templates/<file>".
	Source string
	// The documents of the file, without "---" separators; documents that are only whitespace are left out.
	Documents []string
}

// Release is .Release.
type Release struct {
	Name      string
	Namespace string
	IsUpgrade bool
	IsInstall bool
	Revision  int
	Service   string
}

// Capabilities is .Capabilities.
type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
	HelmVersion HelmVersion
}

type KubeVersion struct {
	Version string
	Major   string
	Minor   string
}

func (kv KubeVersion) String() string     { return kv.Version }
func (kv KubeVersion) GitVersion() string { return kv.Version }

// VersionSet is .Capabilities.APIVersions.
type VersionSet []string

// Has says whether the cluster serves an API version ("apps/v1") or a kind of it ("apps/v1/Deployment").
func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

type HelmVersion struct {
	Version      string
	GitCommit    string
	GitTreeState string
	GoVersion    string
}

// The API versions of a plain cluster (no CRDs), with the kinds this chart uses.
var builtinAPIVersions = []string{
	"v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v1", "autoscaling/v2", "networking.k8s.io/v1",
	"rbac.authorization.k8s.io/v1", "storage.k8s.io/v1", "scheduling.k8s.io/v1", "coordination.k8s.io/v1",
	"v1/ConfigMap", "v1/Secret", "v1/Service", "v1/ServiceAccount", "v1/PersistentVolumeClaim",
	"apps/v1/Deployment", "apps/v1/StatefulSet", "batch/v1/Job", "policy/v1/PodDisruptionBudget",
}

const recursionMaxNums = 1000

// FuncMap returns the template functions of a Helm 3 chart. include and tpl are bound per render; the
// ones returned here fail if called.
func FuncMap() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	extra := template.FuncMap{
		"toToml": func(interface{}) (string, error) {
			return "", fmt.Errorf("toToml is not supported by this renderer")
		},
		"toYaml":        toYAML,
		"fromYaml":      fromYAML,
		"fromYamlArray": fromYAMLArray,
		"toJson":        toJSON,
		"fromJson":      fromJSON,
		"fromJsonArray": fromJSONArray,
		"include":       func(string, interface{}) string { return "not implemented" },
		"tpl":           func(string, interface{}) interface{} { return "not implemented" },
		"required": func(warn string, val interface{}) (interface{}, error) {
			if val == nil {
				return val, fmt.Errorf("%s", warn)
			}
			if s, ok := val.(string); ok && s == "" {
				return val, fmt.Errorf("%s", warn)
			}
			return val, nil
		},
		// No cluster to ask: what `helm template` returns.
		"lookup": func(string, string, string, string) (map[string]interface{}, error) {
			return map[string]interface{}{}, nil
		},
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

// toYAML is Helm's toYaml: sigs.k8s.io/yaml.Marshal (JSON, then yaml.v2), without the final newline.
func toYAML(v interface{}) string {
	js, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var obj interface{}
	if err := yaml2.Unmarshal(js, &obj); err != nil {
		return ""
	}
	data, err := yaml2.Marshal(obj)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func fromYAML(str string) map[string]interface{} {
	m := map[string]interface{}{}
	v, err := yamlToJSONValue([]byte(str))
	if err != nil {
		m["Error"] = err.Error()
		return m
	}
	if v == nil {
		return m
	}
	if mm, ok := v.(map[string]interface{}); ok {
		return mm
	}
	m["Error"] = fmt.Sprintf("error unmarshaling JSON: cannot unmarshal %T into map", v)
	return m
}

func fromYAMLArray(str string) []interface{} {
	v, err := yamlToJSONValue([]byte(str))
	if err != nil {
		return []interface{}{err.Error()}
	}
	a, ok := v.([]interface{})
	if !ok {
		return []interface{}{fmt.Sprintf("cannot unmarshal %T into array", v)}
	}
	return a
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func fromJSON(str string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromJSONArray(str string) []interface{} {
	a := []interface{}{}
	if err := json.Unmarshal([]byte(str), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

// Render renders every template of the chart; NOTES.txt comes back apart.
func Render(c *Chart, opts RenderOptions) ([]Rendered, string, error) {
	if opts.KubeVersion == "" {
		opts.KubeVersion = "v1.29.0"
	}
	kv, err := semver.NewVersion(opts.KubeVersion)
	if err != nil {
		return nil, "", fmt.Errorf("kube version %q: %v", opts.KubeVersion, err)
	}
	if c.Metadata.KubeVersion != "" {
		constraint, err := semver.NewConstraint(c.Metadata.KubeVersion)
		if err != nil {
			return nil, "", fmt.Errorf("Chart.yaml: kubeVersion %q: %v", c.Metadata.KubeVersion, err)
		}
		if !constraint.Check(kv) {
			return nil, "", fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s",
				c.Metadata.KubeVersion, opts.KubeVersion)
		}
	}
	caps := &Capabilities{
		KubeVersion: KubeVersion{Version: "v" + kv.String(), Major: fmt.Sprint(kv.Major()), Minor: fmt.Sprint(kv.Minor())},
		APIVersions: append(append(VersionSet{}, builtinAPIVersions...), opts.APIVersions...),
		HelmVersion: HelmVersion{Version: "v3.14.0", GoVersion: "go1.19"},
	}
	release := map[string]interface{}{
		"Name": opts.ReleaseName, "Namespace": opts.Namespace, "IsUpgrade": false, "IsInstall": true,
		"Revision": 1, "Service": "Helm",
	}

	t := template.New("gotpl")
	if opts.Strict {
		t.Option("missingkey=error")
	} else {
		t.Option("missingkey=zero")
	}
	includedNames := map[string]int{}
	funcs := FuncMap()
	funcs["include"] = includeFun(t, includedNames)
	funcs["tpl"] = tplFun(t, includedNames, opts.Strict)
	t.Funcs(funcs)
	for _, f := range c.Templates {
		if _, err := t.New(f.Name).Parse(string(f.Data)); err != nil {
			return nil, "", fmt.Errorf("parse error: %v", err)
		}
	}

	basePath := c.Metadata.Name + "/templates"
	var out []Rendered
	var notes string
	for _, f := range c.Templates {
		if strings.HasPrefix(path.Base(f.Name), "_") {
			continue
		}
		vals := map[string]interface{}{
			"Values":       opts.Values,
			"Release":      release,
			"Chart":        c.Metadata,
			"Capabilities": caps,
			"Files":        c.Files,
			"Subcharts":    map[string]interface{}{},
			"Template":     map[string]interface{}{"Name": f.Name, "BasePath": basePath},
		}
		var buf strings.Builder
		if err := t.ExecuteTemplate(&buf, f.Name, vals); err != nil {
			return nil, "", cleanupExecError(err)
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if path.Base(f.Name) == "NOTES.txt" {
			notes = text
			continue
		}
		if !strings.HasSuffix(f.Name, ".yaml") && !strings.HasSuffix(f.Name, ".yml") {
			continue
		}
		out = append(out, Rendered{Source: f.Name, Documents: SplitManifests(text)})
	}
	return out, notes, nil
}

func includeFun(t *template.Template, includedNames map[string]int) func(string, interface{}) (string, error) {
	return func(name string, data interface{}) (string, error) {
		if includedNames[name] > recursionMaxNums {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		includedNames[name]++
		defer func() { includedNames[name]-- }()
		var buf strings.Builder
		err := t.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
}

func tplFun(parent *template.Template, includedNames map[string]int, strict bool) func(string, interface{}) (string, error) {
	return func(text string, vals interface{}) (string, error) {
		t, err := parent.Clone()
		if err != nil {
			return "", fmt.Errorf("cannot clone template: %v", err)
		}
		if strict {
			t.Option("missingkey=error")
		} else {
			t.Option("missingkey=zero")
		}
		t.Funcs(template.FuncMap{"include": includeFun(t, includedNames), "tpl": tplFun(t, includedNames, strict)})
		t, err = t.New(parent.Name()).Parse(text)
		if err != nil {
			return "", fmt.Errorf("cannot parse template %q: %v", text, err)
		}
		var buf strings.Builder
		if err := t.Execute(&buf, vals); err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %v", text, err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
}

// cleanupExecError keeps the message of a `fail`/`required` (as Helm prints it) and the template position
// of anything else.
func cleanupExecError(err error) error {
	msg := err.Error()
	if i := strings.LastIndex(msg, "error calling fail: "); i >= 0 {
		return fmt.Errorf("%s (%s)", msg[i+len("error calling fail: "):], strings.SplitN(msg, ": ", 3)[1])
	}
	if i := strings.LastIndex(msg, "error calling required: "); i >= 0 {
		return fmt.Errorf("%s (%s)", msg[i+len("error calling required: "):], strings.SplitN(msg, ": ", 3)[1])
	}
	return err
}

var sep = regexp.MustCompile("(?:^|\\s*\n)---\\s*")

// SplitManifests splits a rendered file into its YAML documents as Helm's releaseutil does.
func SplitManifests(text string) []string {
	var docs []string
	for _, d := range sep.Split(text, -1) {
		if strings.TrimSpace(d) == "" {
			continue
		}
		docs = append(docs, strings.TrimSpace(d)+"\n")
	}
	return docs
}

// WriteTemplate writes the rendered chart as `helm template` prints it.
func WriteTemplate(w *bytes.Buffer, rendered []Rendered) {
	sorted := append([]Rendered{}, rendered...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Source < sorted[j].Source })
	for _, r := range sorted {
		for _, d := range r.Documents {
			fmt.Fprintf(w, "---\n# Source: %s\n%s", r.Source, d)
		}
	}
}
