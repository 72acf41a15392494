// helmcheck renders and checks the distill Helm chart where helm itself cannot be installed.
//
//	helmcheck template [-f VALUES]... [--set K=V]... [--release NAME] [--namespace NS] [--strict]
//	                   [--kube-version V] CHART
//	    prints the manifests as `helm template` does (NOTES.txt on stderr with --notes).
//	helmcheck check [--testdata DIR] CHART
//	    the static checks (every .Values reference defined, every value read), then every variant of
//	    variants.go rendered strictly and checked; prints each problem, exits 1 if there is any.
//	helmcheck configs --out DIR [--testdata DIR] CHART
//	    writes each variant's service config files as DIR/<variant>/<component>.yaml, for the C++ test
//	    that loads them with the services' own config readers.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "template":
		err = cmdTemplate(os.Args[2:])
	case "check":
		err = cmdCheck(os.Args[2:])
	case "configs":
		err = cmdConfigs(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helmcheck:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: helmcheck template|check|configs [flags] CHART (see main.go)")
	os.Exit(2)
}

func chartArg(fs *flag.FlagSet) (*Chart, error) {
	if fs.NArg() != 1 {
		return nil, fmt.Errorf("want one chart directory, got %v", fs.Args())
	}
	return LoadChart(fs.Arg(0))
}

func cmdTemplate(args []string) error {
	fs := flag.NewFlagSet("template", flag.ExitOnError)
	var files, sets, apiVersions listFlag
	fs.Var(&files, "f", "values file (repeatable)")
	fs.Var(&sets, "set", "K=V (repeatable)")
	fs.Var(&apiVersions, "api-versions", "extra API version the cluster offers (repeatable)")
	release := fs.String("release", "distill", "release name")
	namespace := fs.String("namespace", "default", "release namespace")
	strict := fs.Bool("strict", false, "fail on a missing map key (missingkey=error)")
	kubeVersion := fs.String("kube-version", "v1.29.0", "Kubernetes version rendered for")
	notes := fs.Bool("notes", false, "print NOTES.txt on stderr")
	fs.Parse(args)
	c, err := chartArg(fs)
	if err != nil {
		return err
	}
	values := c.Values
	for _, f := range files {
		overlay, err := loadValuesFile(f)
		if err != nil {
			return err
		}
		values = CoalesceValues(values, overlay)
	}
	set := map[string]interface{}{}
	for _, s := range sets {
		if err := ParseSet(set, s); err != nil {
			return err
		}
	}
	values = CoalesceValues(values, setNulls(set, sets))
	rendered, notesText, err := Render(c, RenderOptions{ReleaseName: *release, Namespace: *namespace,
		Values: values, Strict: *strict, KubeVersion: *kubeVersion, APIVersions: apiVersions})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	WriteTemplate(&buf, rendered)
	os.Stdout.Write(buf.Bytes())
	if *notes {
		fmt.Fprint(os.Stderr, notesText)
	}
	if _, err := ParseObjects(rendered); err != nil {
		return err
	}
	return nil
}

func defaultTestdata(chartDir string) string {
	return filepath.Join(chartDir, "..", "..", "tests", "deploy", "helm", "testdata")
}

func cmdCheck(args []string) error {
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	testdata := fs.String("testdata", "", "tests/deploy/helm/testdata (default: beside the chart's repository)")
	fs.Parse(args)
	c, err := chartArg(fs)
	if err != nil {
		return err
	}
	if *testdata == "" {
		*testdata = defaultTestdata(fs.Arg(0))
	}
	failed := 0
	report := func(name string, problems []string) {
		if len(problems) == 0 {
			fmt.Printf("ok    %s\n", name)
			return
		}
		failed++
		fmt.Printf("FAIL  %s\n", name)
		for _, p := range problems {
			fmt.Printf("      %s\n", strings.ReplaceAll(p, "\n", "\n      "))
		}
	}
	report("static: .Values references and unused values", CheckChartStatic(c))
	for _, v := range Variants() {
		res := RunVariant(c, *testdata, v)
		name := "variant " + v.Name
		if v.WantError == "" {
			name += fmt.Sprintf(" (%d objects)", len(res.Objects))
		} else {
			name += " (refused)"
		}
		report(name, res.Problems)
	}
	if failed > 0 {
		return fmt.Errorf("%d check(s) failed", failed)
	}
	return nil
}

func cmdConfigs(args []string) error {
	fs := flag.NewFlagSet("configs", flag.ExitOnError)
	testdata := fs.String("testdata", "", "tests/deploy/helm/testdata")
	out := fs.String("out", "", "output directory")
	fs.Parse(args)
	c, err := chartArg(fs)
	if err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out is required")
	}
	if *testdata == "" {
		*testdata = defaultTestdata(fs.Arg(0))
	}
	written := 0
	for _, v := range Variants() {
		if v.WantError != "" {
			continue
		}
		res := RunVariant(c, *testdata, v)
		if len(res.Objects) == 0 {
			return fmt.Errorf("variant %s: %s", v.Name, strings.Join(res.Problems, "; "))
		}
		dir := filepath.Join(*out, v.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for _, o := range res.Objects {
			if o.Kind() != "ConfigMap" || !strings.HasSuffix(o.Name(), "-config") {
				continue
			}
			component := str(at(o.Body, "metadata", "labels", "app.kubernetes.io/component"))
			data := str(at(o.Body, "data", "config.yaml"))
			if err := os.WriteFile(filepath.Join(dir, component+".yaml"), []byte(data), 0o644); err != nil {
				return err
			}
			written++
		}
	}
	fmt.Printf("wrote %d config files under %s\n", written, *out)
	return nil
}
