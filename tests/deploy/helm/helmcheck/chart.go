package main

// Loading a chart directory the way Helm 3's loader does: Chart.yaml into the metadata that templates see
// as .Chart, values.yaml, templates/ (every file, partials included), and every other file as .Files.
// Symbolic links are followed (Helm follows them when it loads a chart from a directory).

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	yaml3 "gopkg.in/yaml.v3"
)

// Metadata is Chart.yaml with the field names Helm gives it in templates (.Chart.Name, .Chart.AppVersion).
type Metadata struct {
	APIVersion   string            `yaml:"apiVersion"`
	Name         string            `yaml:"name"`
	Home         string            `yaml:"home"`
	Sources      []string          `yaml:"sources"`
	Version      string            `yaml:"version"`
	Description  string            `yaml:"description"`
	Keywords     []string          `yaml:"keywords"`
	Maintainers  []Maintainer      `yaml:"maintainers"`
	Icon         string            `yaml:"icon"`
	Condition    string            `yaml:"condition"`
	Tags         string            `yaml:"tags"`
	AppVersion   string            `yaml:"appVersion"`
	Deprecated   bool              `yaml:"deprecated"`
	Annotations  map[string]string `yaml:"annotations"`
	KubeVersion  string            `yaml:"kubeVersion"`
	Dependencies []Dependency      `yaml:"dependencies"`
	Type         string            `yaml:"type"`
}

type Maintainer struct {
	Name  string `yaml:"name"`
	Email string `yaml:"email"`
	URL   string `yaml:"url"`
}

type Dependency struct {
	Name       string `yaml:"name"`
	Version    string `yaml:"version"`
	Repository string `yaml:"repository"`
}

// TemplateFile is one file of templates/, named as Helm names it: "<chart>/templates/<file>".
type TemplateFile struct {
	Name string
	Data []byte
}

// Chart is a loaded chart directory.
type Chart struct {
	Dir       string
	Metadata  *Metadata
	Values    map[string]interface{}
	RawValues []byte
	Templates []TemplateFile
	Files     Files
}

// Files is .Files: every chart file outside templates/ and the chart's own metadata, by slash path.
type Files map[string][]byte

// Get returns a file's content, "" when there is none (as Helm does).
func (f Files) Get(name string) string { return string(f[name]) }

// GetBytes returns a file's content as bytes.
func (f Files) GetBytes(name string) []byte { return f[name] }

// Glob returns the files whose path matches the pattern ('*' does not cross '/').
func (f Files) Glob(pattern string) Files {
	out := Files{}
	for name, data := range f {
		if ok, err := path.Match(pattern, name); err == nil && ok {
			out[name] = data
		}
	}
	return out
}

// Lines returns a file's lines.
func (f Files) Lines(name string) []string {
	data := f[name]
	if len(data) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// AsConfig renders the files as the data of a ConfigMap (base name: content), as Helm does.
func (f Files) AsConfig() string {
	m := map[string]interface{}{}
	for name, data := range f {
		m[path.Base(name)] = string(data)
	}
	return toYAML(m)
}

// AsSecrets renders the files as the data of a Secret (base name: base64 content).
func (f Files) AsSecrets() string {
	m := map[string]interface{}{}
	for name, data := range f {
		m[path.Base(name)] = base64.StdEncoding.EncodeToString(data)
	}
	return toYAML(m)
}

// Files of the chart that Helm does not expose through .Files.
var chartOwnFiles = map[string]bool{
	"Chart.yaml": true, "values.yaml": true, "values.schema.json": true, "Chart.lock": true,
	"requirements.yaml": true, "requirements.lock": true,
}

// LoadChart reads a chart directory.
func LoadChart(dir string) (*Chart, error) {
	c := &Chart{Dir: dir, Files: Files{}}
	chartYAML, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	c.Metadata = &Metadata{}
	dec := yaml3.NewDecoder(bytes.NewReader(chartYAML))
	dec.KnownFields(true)
	if err := dec.Decode(c.Metadata); err != nil {
		return nil, fmt.Errorf("Chart.yaml: %v", err)
	}
	if c.Metadata.APIVersion != "v2" {
		return nil, fmt.Errorf("Chart.yaml: apiVersion must be v2, got %q", c.Metadata.APIVersion)
	}
	if c.Metadata.Name == "" || c.Metadata.Version == "" {
		return nil, fmt.Errorf("Chart.yaml: name and version are required")
	}
	if len(c.Metadata.Dependencies) > 0 {
		return nil, fmt.Errorf("Chart.yaml: dependencies are not supported by this renderer")
	}
	c.RawValues, err = os.ReadFile(filepath.Join(dir, "values.yaml"))
	if err != nil {
		return nil, err
	}
	c.Values, err = ParseValues(c.RawValues)
	if err != nil {
		return nil, fmt.Errorf("values.yaml: %v", err)
	}
	err = walkFollowingLinks(dir, "", func(rel string, data []byte) {
		switch {
		case strings.HasPrefix(rel, "templates/"):
			c.Templates = append(c.Templates, TemplateFile{Name: c.Metadata.Name + "/" + rel, Data: data})
		case strings.HasPrefix(rel, "charts/"), chartOwnFiles[rel]:
		default:
			c.Files[rel] = data
		}
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(c.Templates, func(i, j int) bool { return c.Templates[i].Name < c.Templates[j].Name })
	return c, nil
}

// walkFollowingLinks calls fn for every regular file under root/rel (slash paths relative to root),
// following symbolic links to files and directories. Hidden files (.helmignore, editor files) are
// skipped.
func walkFollowingLinks(root, rel string, fn func(rel string, data []byte)) error {
	entries, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		child := path.Join(rel, e.Name())
		full := filepath.Join(root, filepath.FromSlash(child))
		info, err := os.Stat(full) // follows links
		if err != nil {
			return fmt.Errorf("%s: %v", child, err)
		}
		if info.IsDir() {
			if err := walkFollowingLinks(root, child, fn); err != nil {
				return err
			}
			continue
		}
		data, err := os.ReadFile(full)
		if err != nil {
			return err
		}
		fn(child, data)
	}
	return nil
}
