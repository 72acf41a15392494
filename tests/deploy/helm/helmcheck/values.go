package main

// Values as Helm holds them: YAML read through JSON (sigs.k8s.io/yaml), so every number is a float64 and
// every map a map[string]interface{}; user values coalesced over the chart's (maps merge key by key, a
// null deletes the chart's key, anything else replaces).

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	yaml2 "gopkg.in/yaml.v2"
)

// ParseValues reads a YAML document of values. An empty document is an empty map.
func ParseValues(data []byte) (map[string]interface{}, error) {
	v, err := yamlToJSONValue(data)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return map[string]interface{}{}, nil
	}
	m, ok := v.(map[string]interface{})
	if !ok {
		return nil, fmt.Errorf("values must be a mapping, got %T", v)
	}
	return m, nil
}

// yamlToJSONValue decodes YAML the way sigs.k8s.io/yaml.Unmarshal into interface{} does: through JSON.
func yamlToJSONValue(data []byte) (interface{}, error) {
	var raw interface{}
	if err := yaml2.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	converted, err := jsonCompatible(raw)
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(converted)
	if err != nil {
		return nil, err
	}
	var out interface{}
	if err := json.Unmarshal(js, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// jsonCompatible turns yaml.v2's map[interface{}]interface{} into map[string]interface{} (keys as
// strings, as sigs.k8s.io/yaml's YAMLToJSON writes them).
func jsonCompatible(v interface{}) (interface{}, error) {
	switch t := v.(type) {
	case map[interface{}]interface{}:
		m := make(map[string]interface{}, len(t))
		for k, val := range t {
			c, err := jsonCompatible(val)
			if err != nil {
				return nil, err
			}
			var key string
			switch kk := k.(type) {
			case string:
				key = kk
			case bool:
				key = strconv.FormatBool(kk)
			case int:
				key = strconv.Itoa(kk)
			case float64:
				key = strconv.FormatFloat(kk, 'g', -1, 64)
			case nil:
				key = "null"
			default:
				return nil, fmt.Errorf("unsupported map key %v (%T)", k, k)
			}
			m[key] = c
		}
		return m, nil
	case []interface{}:
		out := make([]interface{}, len(t))
		for i, val := range t {
			c, err := jsonCompatible(val)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	default:
		return v, nil
	}
}

// CoalesceValues returns base with overlay coalesced over it (a copy; neither input is modified).
func CoalesceValues(base, overlay map[string]interface{}) map[string]interface{} {
	out := deepCopyMap(base)
	for k, v := range overlay {
		if v == nil {
			delete(out, k)
			continue
		}
		if vm, ok := v.(map[string]interface{}); ok {
			if bm, ok := out[k].(map[string]interface{}); ok {
				out[k] = CoalesceValues(bm, vm)
				continue
			}
		}
		out[k] = deepCopyValue(v)
	}
	return out
}

func deepCopyMap(m map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(m))
	for k, v := range m {
		out[k] = deepCopyValue(v)
	}
	return out
}

func deepCopyValue(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		return deepCopyMap(t)
	case []interface{}:
		out := make([]interface{}, len(t))
		for i, e := range t {
			out[i] = deepCopyValue(e)
		}
		return out
	default:
		return v
	}
}

// parentMap returns the map that holds the last of `keys` (a.b.c: values["a"]["b"]), creating the maps on
// the way, and replacing anything there that is not a map.
func parentMap(values map[string]interface{}, keys []string) map[string]interface{} {
	m := values
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			m[k] = next
		}
		m = next
	}
	return m
}

// ParseSet applies one --set a.b.c=value: the value is read as Helm's strvals reads it (true/false,
// null, integers as int64, anything else a string).
func ParseSet(values map[string]interface{}, expr string) error {
	eq := strings.IndexByte(expr, '=')
	if eq <= 0 {
		return fmt.Errorf("--set %q: want key=value", expr)
	}
	keys := strings.Split(expr[:eq], ".")
	raw := expr[eq+1:]
	var value interface{} = raw
	switch {
	case raw == "true":
		value = true
	case raw == "false":
		value = false
	case raw == "null":
		value = nil
	default:
		if i, err := strconv.ParseInt(raw, 10, 64); err == nil {
			value = i
		}
	}
	m := parentMap(values, keys)
	last := keys[len(keys)-1]
	if value == nil {
		delete(m, last)
	} else {
		m[last] = value
	}
	return nil
}
