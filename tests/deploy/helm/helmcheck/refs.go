package main

// The values a chart's templates read, found by parsing them (not by rendering, so branches no values
// file takes are covered too): every `.Values.a.b` and `$.Values.a.b` must name a key that values.yaml
// defines. Reads through variables, `index` and `get` are not followed here; rendering with
// missingkey=error covers them for the branches the rendered variants take.

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"text/template/parse"
)

// ValuesRef is one `.Values...` chain in a template.
type ValuesRef struct {
	Template string
	Line     int
	Path     []string
}

func (r ValuesRef) String() string { return ".Values." + strings.Join(r.Path, ".") }

// parseFuncs are the function names a template may call: text/template's builtins and FuncMap's.
func parseFuncs() map[string]interface{} {
	funcs := map[string]interface{}{}
	for _, name := range []string{"and", "or", "not", "len", "index", "slice", "print", "printf", "println",
		"html", "js", "urlquery", "call", "eq", "ne", "lt", "le", "gt", "ge"} {
		funcs[name] = fmt.Sprint
	}
	for name, f := range FuncMap() {
		funcs[name] = f
	}
	return funcs
}

// FindValuesRefs lists every .Values chain of every template of the chart (partials included).
func FindValuesRefs(c *Chart) ([]ValuesRef, error) {
	funcs := parseFuncs()
	var refs []ValuesRef
	for _, f := range c.Templates {
		text := string(f.Data)
		trees, err := parse.Parse(f.Name, text, "{{", "}}", funcs)
		if err != nil {
			return nil, fmt.Errorf("parse error: %v", err)
		}
		names := make([]string, 0, len(trees))
		for name := range trees {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			tree := trees[name]
			if tree.Root == nil {
				continue
			}
			walk(tree.Root, func(pos parse.Pos, ident []string) {
				line := 1 + strings.Count(text[:int(pos)], "\n")
				refs = append(refs, ValuesRef{Template: f.Name, Line: line, Path: ident})
			})
		}
	}
	return refs, nil
}

// walk calls fn with the path below Values of every .Values.x.y / $.Values.x.y in the tree.
func walk(n parse.Node, fn func(parse.Pos, []string)) {
	switch t := n.(type) {
	case *parse.ListNode:
		if t == nil {
			return
		}
		for _, c := range t.Nodes {
			walk(c, fn)
		}
	case *parse.ActionNode:
		walk(t.Pipe, fn)
	case *parse.PipeNode:
		if t == nil {
			return
		}
		for _, d := range t.Decl {
			walk(d, fn)
		}
		for _, c := range t.Cmds {
			walk(c, fn)
		}
	case *parse.CommandNode:
		for _, a := range t.Args {
			walk(a, fn)
		}
	case *parse.IfNode:
		walkBranch(&t.BranchNode, fn)
	case *parse.RangeNode:
		walkBranch(&t.BranchNode, fn)
	case *parse.WithNode:
		walkBranch(&t.BranchNode, fn)
	case *parse.TemplateNode:
		walk(t.Pipe, fn)
	case *parse.ChainNode:
		walk(t.Node, fn)
	case *parse.FieldNode:
		if len(t.Ident) > 1 && t.Ident[0] == "Values" {
			fn(t.Pos, t.Ident[1:])
		}
	case *parse.VariableNode:
		if len(t.Ident) > 2 && t.Ident[0] == "$" && t.Ident[1] == "Values" {
			fn(t.Pos, t.Ident[2:])
		}
	}
}

func walkBranch(b *parse.BranchNode, fn func(parse.Pos, []string)) {
	walk(b.Pipe, fn)
	walk(b.List, fn)
	if b.ElseList != nil {
		walk(b.ElseList, fn)
	}
}

// CheckValuesRefs reports every reference whose path values does not define. A path may stop at any
// key; it may not go below a value that is not a map, nor name a key a map lacks.
func CheckValuesRefs(refs []ValuesRef, values map[string]interface{}) []string {
	var problems []string
	for _, r := range refs {
		var cur interface{} = values
		for i, key := range r.Path {
			m, ok := cur.(map[string]interface{})
			if !ok {
				problems = append(problems, fmt.Sprintf("%s:%d: %s: .Values.%s is a %T, not a map", r.Template, r.Line,
					r, strings.Join(r.Path[:i], "."), cur))
				break
			}
			next, ok := m[key]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s:%d: %s is not defined in values.yaml", r.Template, r.Line, r))
				break
			}
			cur = next
		}
	}
	return problems
}

// yamlKey is a YAML mapping key at the start of a line of template text.
var yamlKey = regexp.MustCompile(`(?m)^\s*([A-Za-z_][A-Za-z0-9_]*):`)

// MentionedNames lists every identifier the templates use in a field chain (.a.b, $x.a), every string
// literal (the keys of get, index, hasKey and dict), and the YAML keys written in the text of `define`d
// helpers (data tables read back with fromYaml, such as distill.components).
func MentionedNames(c *Chart) (map[string]bool, error) {
	funcs := parseFuncs()
	names := map[string]bool{}
	inDefine := false
	var visit func(n parse.Node)
	visit = func(n parse.Node) {
		switch t := n.(type) {
		case *parse.TextNode:
			if inDefine {
				for _, m := range yamlKey.FindAllSubmatch(t.Text, -1) {
					names[string(m[1])] = true
				}
			}
		case *parse.ListNode:
			if t == nil {
				return
			}
			for _, c := range t.Nodes {
				visit(c)
			}
		case *parse.ActionNode:
			visit(t.Pipe)
		case *parse.PipeNode:
			if t == nil {
				return
			}
			for _, c := range t.Cmds {
				visit(c)
			}
		case *parse.CommandNode:
			for _, a := range t.Args {
				visit(a)
			}
		case *parse.IfNode:
			visit(t.Pipe)
			visit(t.List)
			visit(t.ElseList)
		case *parse.RangeNode:
			visit(t.Pipe)
			visit(t.List)
			visit(t.ElseList)
		case *parse.WithNode:
			visit(t.Pipe)
			visit(t.List)
			visit(t.ElseList)
		case *parse.TemplateNode:
			visit(t.Pipe)
		case *parse.ChainNode:
			visit(t.Node)
			for _, f := range t.Field {
				names[f] = true
			}
		case *parse.FieldNode:
			for _, f := range t.Ident {
				names[f] = true
			}
		case *parse.VariableNode:
			for _, f := range t.Ident[1:] {
				names[f] = true
			}
		case *parse.StringNode:
			names[t.Text] = true
		}
	}
	for _, f := range c.Templates {
		trees, err := parse.Parse(f.Name, string(f.Data), "{{", "}}", funcs)
		if err != nil {
			return nil, fmt.Errorf("parse error: %v", err)
		}
		for name, tree := range trees {
			if tree.Root != nil {
				inDefine = name != f.Name
				visit(tree.Root)
			}
		}
	}
	return names, nil
}

// CheckValuesUsed reports every key of values.yaml that no template names (MentionedNames). Below the
// keys in opaque (dotted paths whose value templates pass on whole: resources, config, annotations...)
// nothing is checked.
func CheckValuesUsed(values map[string]interface{}, mentioned map[string]bool, opaque []string) []string {
	isOpaque := map[string]bool{}
	for _, p := range opaque {
		isOpaque[p] = true
	}
	var problems []string
	var visit func(prefix string, m map[string]interface{})
	visit = func(prefix string, m map[string]interface{}) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			path := strings.TrimPrefix(prefix+"."+k, ".")
			if !mentioned[k] {
				problems = append(problems, fmt.Sprintf("values.yaml: %s is not read by any template", path))
				continue
			}
			if isOpaque[path] || isOpaque["*."+k] {
				continue
			}
			if sub, ok := m[k].(map[string]interface{}); ok {
				visit(path, sub)
			}
		}
	}
	visit("", values)
	return problems
}
