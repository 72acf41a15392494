package main

// Rendered documents parsed into objects, and small accessors for reading them.

import (
	"fmt"
	"strings"

	yaml3 "gopkg.in/yaml.v3"
)

// Object is one rendered Kubernetes object.
type Object struct {
	// Where it came from: "<chart>/templates/<file>#<n>" (n counts the file's documents from 1).
	Source string
	Body   map[string]interface{}
}

func (o *Object) Kind() string       { return str(o.Body["kind"]) }
func (o *Object) APIVersion() string { return str(o.Body["apiVersion"]) }
func (o *Object) Name() string       { return str(at(o.Body, "metadata", "name")) }

// ID is "Kind/name" for messages.
func (o *Object) ID() string { return o.Kind() + "/" + o.Name() }

// ParseObjects parses every rendered document. A document must be a YAML mapping; duplicate keys are
// errors (yaml.v3 rejects them, as the API server's strict decoding does).
func ParseObjects(rendered []Rendered) ([]*Object, error) {
	var objects []*Object
	var errs []string
	for _, r := range rendered {
		for i, d := range r.Documents {
			source := fmt.Sprintf("%s#%d", r.Source, i+1)
			var body map[string]interface{}
			if err := yaml3.Unmarshal([]byte(d), &body); err != nil {
				errs = append(errs, fmt.Sprintf("%s: not valid YAML: %v\n%s", source, err, numbered(d)))
				continue
			}
			if body == nil { // only comments
				continue
			}
			objects = append(objects, &Object{Source: source, Body: body})
		}
	}
	if len(errs) > 0 {
		return objects, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return objects, nil
}

func numbered(doc string) string {
	var b strings.Builder
	for i, line := range strings.Split(doc, "\n") {
		fmt.Fprintf(&b, "%4d | %s\n", i+1, line)
	}
	return b.String()
}

// at walks maps and lists ("containers", 0, "name"); nil when any step is missing.
func at(v interface{}, keys ...interface{}) interface{} {
	for _, k := range keys {
		switch key := k.(type) {
		case string:
			m, ok := v.(map[string]interface{})
			if !ok {
				return nil
			}
			v = m[key]
		case int:
			l, ok := v.([]interface{})
			if !ok || key < 0 || key >= len(l) {
				return nil
			}
			v = l[key]
		default:
			panic(fmt.Sprintf("bad key %T", k))
		}
	}
	return v
}

func str(v interface{}) string {
	s, _ := v.(string)
	return s
}

func mapAt(v interface{}, keys ...interface{}) map[string]interface{} {
	m, _ := at(v, keys...).(map[string]interface{})
	return m
}

func listAt(v interface{}, keys ...interface{}) []interface{} {
	l, _ := at(v, keys...).([]interface{})
	return l
}

// intAt reads an integer; ok is false when it is missing or not an integer.
func intAt(v interface{}, keys ...interface{}) (int, bool) {
	switch n := at(v, keys...).(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	case uint64:
		return int(n), true
	default:
		return 0, false
	}
}

// stringMap reads a map of strings (labels, selectors); non-string values come back as "".
func stringMap(v interface{}, keys ...interface{}) map[string]string {
	m := mapAt(v, keys...)
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, val := range m {
		out[k] = str(val)
	}
	return out
}
