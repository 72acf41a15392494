package main

// Checks of rendered manifests: what the API server and kubelet would reject, what would deploy but not
// work (a Service selecting no pod, a probe on a port the container does not declare, a volume naming a
// ConfigMap nobody creates), and the chart's own promises (non-root, read-only root filesystem, an
// Indexed Job whose ranks can find rank 0, service configs whose ports and addresses match the
// Services). Every problem is reported, as "<source> Kind/name: message".

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"

	yaml3 "gopkg.in/yaml.v3"
)

// CheckOptions say what may exist outside the rendered objects.
type CheckOptions struct {
	// The release namespace (service addresses are <svc>.<namespace>.svc:<port>).
	Namespace string
	// Secrets, ConfigMaps and PVCs the user provides (existingSecret, existingClaim values).
	ExternalSecrets    []string
	ExternalConfigMaps []string
	ExternalClaims     []string
}

var (
	dns1123Label    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1035Label    = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
	labelValue      = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`)
	labelNamePart   = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	labelPrefix     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)
	portName        = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	configKey       = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
	quantity        = regexp.MustCompile(`^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$`)
	envName         = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)
	imageRef        = regexp.MustCompile(`^[a-z0-9]+([._/-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$`)
	formatArtifact  = regexp.MustCompile(`%!|<no value>`)
	completionIndex = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
)

// The apiVersion each kind must have (current, non-deprecated APIs).
var kindAPIVersion = map[string]string{
	"ConfigMap": "v1", "Secret": "v1", "Service": "v1", "ServiceAccount": "v1",
	"PersistentVolumeClaim": "v1", "Deployment": "apps/v1", "StatefulSet": "apps/v1", "Job": "batch/v1",
	"PodDisruptionBudget": "policy/v1", "ServiceMonitor": "monitoring.coreos.com/v1",
	"PrometheusRule": "monitoring.coreos.com/v1",
}

type checker struct {
	opts     CheckOptions
	objects  []*Object
	problems []string
}

func (c *checker) errorf(o *Object, format string, args ...interface{}) {
	c.problems = append(c.problems, fmt.Sprintf("%s %s: %s", o.Source, o.ID(), fmt.Sprintf(format, args...)))
}

// CheckObjects runs every check; it returns the problems found, sorted.
func CheckObjects(objects []*Object, opts CheckOptions) []string {
	c := &checker{opts: opts, objects: objects}
	seen := map[string]*Object{}
	for _, o := range objects {
		c.checkCommon(o)
		key := o.APIVersion() + "/" + o.ID() + "@" + str(at(o.Body, "metadata", "namespace"))
		if prev, ok := seen[key]; ok {
			c.errorf(o, "same kind and name as %s", prev.Source)
		}
		seen[key] = o
		switch o.Kind() {
		case "Deployment", "StatefulSet":
			c.checkWorkload(o)
		case "Job":
			c.checkJob(o)
		case "Service":
			c.checkService(o)
		case "PersistentVolumeClaim":
			c.checkPVC(o)
		case "ConfigMap":
			c.checkConfigMap(o)
		case "Secret":
			c.checkSecret(o)
		case "PodDisruptionBudget":
			c.checkPDB(o)
		case "ServiceMonitor":
			c.checkServiceMonitor(o)
		case "PrometheusRule":
			c.checkPrometheusRule(o)
		}
	}
	c.checkServiceConfigs()
	sort.Strings(c.problems)
	return c.problems
}

func (c *checker) checkCommon(o *Object) {
	kind := o.Kind()
	if kind == "" || o.APIVersion() == "" || o.Name() == "" {
		c.errorf(o, "apiVersion, kind and metadata.name are required")
		return
	}
	if want, ok := kindAPIVersion[kind]; !ok {
		c.errorf(o, "kind %s is not one this chart is expected to create", kind)
	} else if o.APIVersion() != want {
		c.errorf(o, "apiVersion %s, want %s", o.APIVersion(), want)
	}
	name := o.Name()
	if len(name) > 63 || !dns1123Label.MatchString(name) {
		c.errorf(o, "metadata.name %q is not a DNS-1123 label (lower-case alphanumerics and '-', at most 63)", name)
	}
	if kind == "Service" && !dns1035Label.MatchString(name) {
		c.errorf(o, "a Service name must start with a letter (DNS-1035), got %q", name)
	}
	c.checkLabels(o, mapAt(o.Body, "metadata", "labels"), "metadata.labels")
	walkStrings(o.Body, "", func(path, s string) {
		if formatArtifact.MatchString(s) {
			c.errorf(o, "%s: template formatting artifact in %q", path, s)
		}
	})
}

func (c *checker) checkLabels(o *Object, labels map[string]interface{}, where string) {
	for k, v := range labels {
		name := k
		if i := strings.LastIndexByte(k, '/'); i >= 0 {
			prefix := k[:i]
			name = k[i+1:]
			if len(prefix) > 253 || !labelPrefix.MatchString(prefix) {
				c.errorf(o, "%s: bad label prefix in %q", where, k)
			}
		}
		if len(name) > 63 || !labelNamePart.MatchString(name) {
			c.errorf(o, "%s: bad label name %q", where, k)
		}
		s, ok := v.(string)
		if !ok {
			c.errorf(o, "%s: label %q must be a string, got %T", where, k, v)
			continue
		}
		if len(s) > 63 || !labelValue.MatchString(s) {
			c.errorf(o, "%s: bad label value %q=%q", where, k, s)
		}
	}
}

// walkStrings calls fn for every string in a decoded document, with its dotted path.
func walkStrings(v interface{}, path string, fn func(path, s string)) {
	switch t := v.(type) {
	case map[string]interface{}:
		for k, val := range t {
			walkStrings(val, path+"."+k, fn)
		}
	case []interface{}:
		for i, val := range t {
			walkStrings(val, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	case string:
		fn(strings.TrimPrefix(path, "."), t)
	}
}

// --- workloads -------------------------------------------------------------------------------------

// podTemplate is a workload's pod template: its labels and its pod spec.
type podTemplate struct {
	owner  *Object
	labels map[string]string
	spec   map[string]interface{}
}

func (c *checker) podTemplates() []podTemplate {
	var out []podTemplate
	for _, o := range c.objects {
		switch o.Kind() {
		case "Deployment", "StatefulSet", "Job":
			out = append(out, podTemplate{
				owner:  o,
				labels: stringMap(o.Body, "spec", "template", "metadata", "labels"),
				spec:   mapAt(o.Body, "spec", "template", "spec"),
			})
		}
	}
	return out
}

func (c *checker) find(kind, name string) *Object {
	for _, o := range c.objects {
		if o.Kind() == kind && o.Name() == name {
			return o
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (c *checker) checkWorkload(o *Object) {
	if _, ok := intAt(o.Body, "spec", "replicas"); !ok {
		c.errorf(o, "spec.replicas must be an integer")
	}
	selector := stringMap(o.Body, "spec", "selector", "matchLabels")
	if len(selector) == 0 {
		c.errorf(o, "spec.selector.matchLabels is empty")
	}
	labels := stringMap(o.Body, "spec", "template", "metadata", "labels")
	c.checkLabels(o, mapAt(o.Body, "spec", "template", "metadata", "labels"), "spec.template.metadata.labels")
	for k, v := range selector {
		if labels[k] != v {
			c.errorf(o, "spec.selector.matchLabels %s=%s does not match the pod template's labels", k, v)
		}
	}
	if o.Kind() == "Deployment" {
		switch str(at(o.Body, "spec", "strategy", "type")) {
		case "", "RollingUpdate", "Recreate":
		default:
			c.errorf(o, "spec.strategy.type must be RollingUpdate or Recreate")
		}
	}
	c.checkPodSpec(o, mapAt(o.Body, "spec", "template", "spec"), true)
}

func (c *checker) checkJob(o *Object) {
	spec := mapAt(o.Body, "spec")
	pod := mapAt(spec, "template", "spec")
	c.checkLabels(o, mapAt(spec, "template", "metadata", "labels"), "spec.template.metadata.labels")
	c.checkPodSpec(o, pod, false)
	switch str(pod["restartPolicy"]) {
	case "Never", "OnFailure":
	default:
		c.errorf(o, "spec.template.spec.restartPolicy must be Never or OnFailure")
	}
	if str(spec["completionMode"]) != "Indexed" {
		c.errorf(o, "spec.completionMode must be Indexed (each pod is one rank)")
		return
	}
	completions, ok1 := intAt(spec, "completions")
	parallelism, ok2 := intAt(spec, "parallelism")
	if !ok1 || !ok2 || completions < 1 || completions != parallelism {
		c.errorf(o, "spec.completions (%v) and spec.parallelism (%v) must be the same positive integer: every rank runs at once",
			spec["completions"], spec["parallelism"])
	}
	// Pods of an Indexed Job are named (and host-named) <job>-<index>.
	if host := fmt.Sprintf("%s-%d", o.Name(), completions-1); len(host) > 63 {
		c.errorf(o, "pod hostname %q is longer than 63 characters", host)
	}
	podLabels := stringMap(spec, "template", "metadata", "labels")
	subdomain := str(pod["subdomain"])
	var headless *Object
	if subdomain == "" {
		c.errorf(o, "spec.template.spec.subdomain is required: ranks find rank 0 through a headless Service")
	} else if headless = c.find("Service", subdomain); headless == nil {
		c.errorf(o, "subdomain %q names no Service", subdomain)
	} else {
		if str(at(headless.Body, "spec", "clusterIP")) != "None" {
			c.errorf(o, "Service %s (the subdomain) must be headless (clusterIP: None)", subdomain)
		}
		if !selects(stringMap(headless.Body, "spec", "selector"), podLabels) {
			c.errorf(o, "Service %s (the subdomain) does not select the Job's pods", subdomain)
		}
	}
	for _, ct := range listAt(pod, "containers") {
		env := map[string]map[string]interface{}{}
		for _, e := range listAt(ct, "env") {
			if m, ok := e.(map[string]interface{}); ok {
				env[str(m["name"])] = m
			}
		}
		if env["WORLD_SIZE"] == nil {
			continue
		}
		name := str(at(ct, "name"))
		if ws := str(env["WORLD_SIZE"]["value"]); ws != strconv.Itoa(completions) {
			c.errorf(o, "container %s: WORLD_SIZE %q must equal spec.completions %d", name, ws, completions)
		}
		if rank := env["RANK"]; rank == nil || str(at(rank, "valueFrom", "fieldRef", "fieldPath")) != completionIndex {
			c.errorf(o, "container %s: RANK must come from the fieldRef %s", name, completionIndex)
		}
		if addr := str(at(env["MASTER_ADDR"], "value")); addr != fmt.Sprintf("%s-0.%s", o.Name(), subdomain) {
			c.errorf(o, "container %s: MASTER_ADDR %q must be rank 0's pod, %s-0.%s", name, addr, o.Name(), subdomain)
		}
		port, err := strconv.Atoi(str(at(env["MASTER_PORT"], "value")))
		if err != nil {
			c.errorf(o, "container %s: MASTER_PORT must be a port number", name)
			continue
		}
		if !containerHasPort(ct, port) {
			c.errorf(o, "container %s: MASTER_PORT %d is not one of its ports", name, port)
		}
		if headless != nil && !serviceHasPort(headless, port) {
			c.errorf(o, "container %s: MASTER_PORT %d is not a port of Service %s", name, port, subdomain)
		}
	}
}

func containerHasPort(ct interface{}, port int) bool {
	for _, p := range listAt(ct, "ports") {
		if n, ok := intAt(p, "containerPort"); ok && n == port {
			return true
		}
	}
	return false
}

func serviceHasPort(svc *Object, port int) bool {
	for _, p := range listAt(svc.Body, "spec", "ports") {
		if n, ok := intAt(p, "port"); ok && n == port {
			return true
		}
	}
	return false
}

func (c *checker) checkPodSpec(o *Object, pod map[string]interface{}, isService bool) {
	if pod == nil {
		c.errorf(o, "no pod template spec")
		return
	}
	// Volumes and what they refer to.
	volumes := map[string]map[string]interface{}{}
	for _, v := range listAt(pod, "volumes") {
		vm, _ := v.(map[string]interface{})
		name := str(vm["name"])
		if _, dup := volumes[name]; dup {
			c.errorf(o, "volume %q is declared twice", name)
		}
		volumes[name] = vm
		if cm := str(at(vm, "configMap", "name")); cm != "" && c.find("ConfigMap", cm) == nil &&
			!contains(c.opts.ExternalConfigMaps, cm) {
			c.errorf(o, "volume %s: ConfigMap %q is not rendered", name, cm)
		}
		if s := str(at(vm, "secret", "secretName")); s != "" && !c.secretExists(s) {
			c.errorf(o, "volume %s: Secret %q is not rendered", name, s)
		}
		if claim := str(at(vm, "persistentVolumeClaim", "claimName")); claim != "" &&
			c.find("PersistentVolumeClaim", claim) == nil && !contains(c.opts.ExternalClaims, claim) {
			c.errorf(o, "volume %s: PersistentVolumeClaim %q is not rendered", name, claim)
		}
		if at(vm, "persistentVolumeClaim") == nil && at(vm, "configMap") == nil && at(vm, "secret") == nil &&
			at(vm, "emptyDir") == nil {
			c.errorf(o, "volume %s: unexpected volume type", name)
		}
	}
	if sa := str(pod["serviceAccountName"]); sa != "" && sa != "default" && c.find("ServiceAccount", sa) == nil {
		c.errorf(o, "serviceAccountName %q is not rendered", sa)
	}
	podSC := mapAt(pod, "securityContext")
	containers := listAt(pod, "containers")
	if len(containers) == 0 {
		c.errorf(o, "no containers")
	}
	type group struct {
		key  string
		list []interface{}
	}
	for _, g := range []group{{"containers", containers}, {"initContainers", listAt(pod, "initContainers")}} {
		for i, ct := range g.list {
			name := str(at(ct, "name"))
			where := fmt.Sprintf("%s[%d] %s", g.key, i, name)
			if name == "" || !dns1123Label.MatchString(name) {
				c.errorf(o, "%s: container name must be a DNS-1123 label", where)
			}
			if img := str(at(ct, "image")); !imageRef.MatchString(img) {
				c.errorf(o, "%s: image %q is not a valid image reference", where, img)
			}
			c.checkSecurityContext(o, where, podSC, mapAt(ct, "securityContext"))
			c.checkContainerEnv(o, where, ct)
			c.checkResources(o, where, ct)
			mounts := map[string]bool{}
			for _, m := range listAt(ct, "volumeMounts") {
				vol, path := str(at(m, "name")), str(at(m, "mountPath"))
				if volumes[vol] == nil {
					c.errorf(o, "%s: volumeMount %q names no volume of the pod", where, vol)
				}
				if mounts[path] {
					c.errorf(o, "%s: two volumes mounted at %s", where, path)
				}
				mounts[path] = true
			}
			ports := map[string]int{}
			for _, p := range listAt(ct, "ports") {
				pn := str(at(p, "name"))
				n, ok := intAt(p, "containerPort")
				if !ok || n < 1 || n > 65535 {
					c.errorf(o, "%s: port %q has no valid containerPort", where, pn)
				}
				if pn != "" {
					if len(pn) > 15 || !portName.MatchString(pn) {
						c.errorf(o, "%s: port name %q must be an IANA service name (at most 15 characters)", where, pn)
					}
					if _, dup := ports[pn]; dup {
						c.errorf(o, "%s: port name %q is declared twice", where, pn)
					}
					ports[pn] = n
				}
			}
			if g.key != "containers" {
				continue
			}
			if !mounts["/tmp"] || volumes[volumeAt(ct, "/tmp")]["emptyDir"] == nil {
				c.errorf(o, "%s: /tmp must be an emptyDir (the root filesystem is read-only)", where)
			}
			for _, probe := range []string{"startupProbe", "readinessProbe", "livenessProbe"} {
				p := mapAt(ct, probe)
				if p == nil {
					if isService && probe != "startupProbe" {
						c.errorf(o, "%s: %s is required for a service", where, probe)
					}
					continue
				}
				c.checkProbe(o, where+" "+probe, p, ports)
			}
		}
	}
}

func volumeAt(ct interface{}, path string) string {
	for _, m := range listAt(ct, "volumeMounts") {
		if str(at(m, "mountPath")) == path {
			return str(at(m, "name"))
		}
	}
	return ""
}

func (c *checker) secretExists(name string) bool {
	return c.find("Secret", name) != nil || contains(c.opts.ExternalSecrets, name)
}

// checkProbe: exactly one action, on a port the container declares (by name or number).
func (c *checker) checkProbe(o *Object, where string, p map[string]interface{}, ports map[string]int) {
	actions := 0
	for _, a := range []string{"grpc", "httpGet", "tcpSocket", "exec"} {
		if p[a] != nil {
			actions++
		}
	}
	if actions != 1 {
		c.errorf(o, "%s: must have exactly one of grpc, httpGet, tcpSocket, exec", where)
		return
	}
	var port interface{}
	switch {
	case p["grpc"] != nil:
		port = at(p, "grpc", "port")
		if _, ok := port.(int); !ok {
			c.errorf(o, "%s: grpc.port must be a number (Kubernetes has no named gRPC probe ports)", where)
			return
		}
	case p["httpGet"] != nil:
		port = at(p, "httpGet", "port")
		if !strings.HasPrefix(str(at(p, "httpGet", "path")), "/") {
			c.errorf(o, "%s: httpGet.path must start with /", where)
		}
	case p["tcpSocket"] != nil:
		port = at(p, "tcpSocket", "port")
	default:
		return
	}
	switch v := port.(type) {
	case string:
		if _, ok := ports[v]; !ok {
			c.errorf(o, "%s: port %q is not a named port of the container", where, v)
		}
	case int:
		found := false
		for _, n := range ports {
			found = found || n == v
		}
		if !found {
			c.errorf(o, "%s: port %d is not a port of the container", where, v)
		}
	default:
		c.errorf(o, "%s: no port", where)
	}
	for _, k := range []string{"periodSeconds", "timeoutSeconds", "failureThreshold"} {
		if p[k] == nil {
			continue
		}
		if n, ok := intAt(p, k); !ok || n < 1 {
			c.errorf(o, "%s: %s must be a positive integer", where, k)
		}
	}
}

// checkSecurityContext: the effective context (container over pod) runs as a non-root user, on a
// read-only root filesystem, without privilege escalation or capabilities.
func (c *checker) checkSecurityContext(o *Object, where string, pod, ct map[string]interface{}) {
	effective := func(key string) interface{} {
		if v, ok := ct[key]; ok {
			return v
		}
		return pod[key]
	}
	if effective("runAsNonRoot") != true {
		c.errorf(o, "%s: runAsNonRoot must be true", where)
	}
	if uid, ok := effective("runAsUser").(int); !ok || uid == 0 {
		c.errorf(o, "%s: runAsUser must be a non-zero UID (the image's user is 10001)", where)
	}
	if ct["readOnlyRootFilesystem"] != true {
		c.errorf(o, "%s: readOnlyRootFilesystem must be true", where)
	}
	if ct["allowPrivilegeEscalation"] != false {
		c.errorf(o, "%s: allowPrivilegeEscalation must be false", where)
	}
	if ct["privileged"] == true {
		c.errorf(o, "%s: must not be privileged", where)
	}
	drop := false
	for _, d := range listAt(ct, "capabilities", "drop") {
		drop = drop || d == "ALL"
	}
	if !drop || len(listAt(ct, "capabilities", "add")) > 0 {
		c.errorf(o, "%s: capabilities must drop ALL and add none", where)
	}
}

func (c *checker) checkContainerEnv(o *Object, where string, ct interface{}) {
	seen := map[string]bool{}
	for _, e := range listAt(ct, "env") {
		name := str(at(e, "name"))
		if !envName.MatchString(name) {
			c.errorf(o, "%s: bad env name %q", where, name)
		}
		if seen[name] {
			c.errorf(o, "%s: env %s is set twice", where, name)
		}
		seen[name] = true
		_, hasValue := mapAt(e)["value"]
		from := mapAt(e, "valueFrom")
		if hasValue == (from != nil) {
			c.errorf(o, "%s: env %s needs exactly one of value, valueFrom", where, name)
		}
		if hasValue {
			if _, ok := at(e, "value").(string); !ok {
				c.errorf(o, "%s: env %s: value must be a string, got %T", where, name, at(e, "value"))
			}
		}
		if ref := mapAt(from, "secretKeyRef"); ref != nil && at(ref, "optional") != true {
			c.checkSecretKey(o, where, name, str(ref["name"]), str(ref["key"]))
		}
		if ref := mapAt(from, "configMapKeyRef"); ref != nil && at(ref, "optional") != true {
			cm := c.find("ConfigMap", str(ref["name"]))
			if cm == nil && !contains(c.opts.ExternalConfigMaps, str(ref["name"])) {
				c.errorf(o, "%s: env %s: ConfigMap %q is not rendered", where, name, str(ref["name"]))
			} else if cm != nil && at(cm.Body, "data", str(ref["key"])) == nil {
				c.errorf(o, "%s: env %s: ConfigMap %q has no key %q", where, name, str(ref["name"]), str(ref["key"]))
			}
		}
	}
	for _, e := range listAt(ct, "envFrom") {
		if s := str(at(e, "secretRef", "name")); s != "" && at(e, "secretRef", "optional") != true && !c.secretExists(s) {
			c.errorf(o, "%s: envFrom Secret %q is not rendered", where, s)
		}
		if cm := str(at(e, "configMapRef", "name")); cm != "" && c.find("ConfigMap", cm) == nil &&
			!contains(c.opts.ExternalConfigMaps, cm) {
			c.errorf(o, "%s: envFrom ConfigMap %q is not rendered", where, cm)
		}
	}
}

func (c *checker) checkSecretKey(o *Object, where, env, secret, key string) {
	s := c.find("Secret", secret)
	if s == nil {
		if !contains(c.opts.ExternalSecrets, secret) {
			c.errorf(o, "%s: env %s: Secret %q is not rendered", where, env, secret)
		}
		return
	}
	if at(s.Body, "stringData", key) == nil && at(s.Body, "data", key) == nil {
		c.errorf(o, "%s: env %s: Secret %q has no key %q", where, env, secret, key)
	}
}

func (c *checker) checkResources(o *Object, where string, ct interface{}) {
	for _, kind := range []string{"requests", "limits"} {
		for name, v := range mapAt(ct, "resources", kind) {
			var s string
			switch q := v.(type) {
			case string:
				s = q
			case int:
				s = strconv.Itoa(q)
			case float64:
				s = strconv.FormatFloat(q, 'f', -1, 64)
			}
			if !quantity.MatchString(s) {
				c.errorf(o, "%s: resources.%s.%s: %v is not a quantity", where, kind, name, v)
			}
			// Extended resources (GPUs) are whole numbers and, when requested, equal to the limit.
			if strings.Contains(name, "/") {
				if _, ok := v.(int); !ok {
					c.errorf(o, "%s: resources.%s.%s must be an integer", where, kind, name)
				}
				if kind == "requests" && at(ct, "resources", "limits", name) != v {
					c.errorf(o, "%s: resources.requests.%s must equal its limit", where, name)
				}
			}
		}
	}
	if at(ct, "resources", "requests") == nil {
		c.errorf(o, "%s: resources.requests are required (the scheduler places pods by them)", where)
	}
}

// --- Services and selectors ------------------------------------------------------------------------

// selects says whether a Service-style selector (a plain label map) selects pods with these labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}

// matchesLabelSelector evaluates a metav1.LabelSelector (matchLabels and matchExpressions).
func matchesLabelSelector(sel map[string]interface{}, labels map[string]string) bool {
	ml := stringMap(sel, "matchLabels")
	if len(ml) == 0 && len(listAt(sel, "matchExpressions")) == 0 {
		return false
	}
	for k, v := range ml {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	for _, e := range listAt(sel, "matchExpressions") {
		key := str(at(e, "key"))
		var values []string
		for _, v := range listAt(e, "values") {
			values = append(values, str(v))
		}
		lv, has := labels[key]
		switch str(at(e, "operator")) {
		case "In":
			if !has || !contains(values, lv) {
				return false
			}
		case "NotIn":
			if has && contains(values, lv) {
				return false
			}
		case "Exists":
			if !has {
				return false
			}
		case "DoesNotExist":
			if has {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func (c *checker) checkService(o *Object) {
	spec := mapAt(o.Body, "spec")
	switch str(spec["type"]) {
	case "", "ClusterIP", "NodePort", "LoadBalancer":
	default:
		c.errorf(o, "spec.type %q is not ClusterIP, NodePort or LoadBalancer", str(spec["type"]))
	}
	selector := stringMap(spec, "selector")
	var targets []podTemplate
	for _, pt := range c.podTemplates() {
		if selects(selector, pt.labels) {
			targets = append(targets, pt)
		}
	}
	if len(targets) == 0 {
		c.errorf(o, "spec.selector %v selects no workload's pods", selector)
	}
	ports := listAt(spec, "ports")
	if len(ports) == 0 {
		c.errorf(o, "spec.ports is empty")
	}
	names := map[string]bool{}
	for i, p := range ports {
		name := str(at(p, "name"))
		if len(ports) > 1 && name == "" {
			c.errorf(o, "ports[%d] needs a name (the Service has several ports)", i)
		}
		if names[name] {
			c.errorf(o, "port name %q is used twice", name)
		}
		names[name] = true
		if n, ok := intAt(p, "port"); !ok || n < 1 || n > 65535 {
			c.errorf(o, "ports[%d] (%s): port must be in [1, 65535]", i, name)
		}
		target := at(p, "targetPort")
		if target == nil {
			target = at(p, "port")
		}
		for _, pt := range targets {
			if !podHasPort(pt.spec, target) {
				c.errorf(o, "ports[%d] (%s): targetPort %v is not a container port of %s", i, name, target, pt.owner.ID())
			}
		}
	}
}

func podHasPort(pod map[string]interface{}, target interface{}) bool {
	for _, ct := range listAt(pod, "containers") {
		for _, p := range listAt(ct, "ports") {
			if s, ok := target.(string); ok && str(at(p, "name")) == s {
				return true
			}
			if n, ok := target.(int); ok {
				if cp, ok := intAt(p, "containerPort"); ok && cp == n {
					return true
				}
			}
		}
	}
	return false
}

// --- storage, config, secrets ----------------------------------------------------------------------

func (c *checker) checkPVC(o *Object) {
	modes := listAt(o.Body, "spec", "accessModes")
	if len(modes) == 0 {
		c.errorf(o, "spec.accessModes is empty")
	}
	for _, m := range modes {
		switch str(m) {
		case "ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod":
		default:
			c.errorf(o, "spec.accessModes: %v is not an access mode", m)
		}
	}
	if s := str(at(o.Body, "spec", "resources", "requests", "storage")); !quantity.MatchString(s) {
		c.errorf(o, "spec.resources.requests.storage %q is not a quantity", s)
	}
}

func (c *checker) checkConfigMap(o *Object) {
	data := mapAt(o.Body, "data")
	if len(data) == 0 && len(mapAt(o.Body, "binaryData")) == 0 {
		c.errorf(o, "has no data")
	}
	size := 0
	for k, v := range data {
		if !configKey.MatchString(k) {
			c.errorf(o, "data key %q is not a valid ConfigMap key", k)
		}
		s, ok := v.(string)
		if !ok {
			c.errorf(o, "data.%s must be a string, got %T", k, v)
			continue
		}
		size += len(k) + len(s)
		switch {
		case strings.HasSuffix(k, ".json"):
			var js interface{}
			if err := json.Unmarshal([]byte(s), &js); err != nil {
				c.errorf(o, "data.%s is not valid JSON: %v", k, err)
			}
		case strings.HasSuffix(k, ".yaml"), strings.HasSuffix(k, ".yml"):
			var y interface{}
			if err := yaml3.Unmarshal([]byte(s), &y); err != nil {
				c.errorf(o, "data.%s is not valid YAML: %v", k, err)
			}
		}
	}
	// The API server's limit on a ConfigMap.
	if size > 1<<20 {
		c.errorf(o, "data is %d bytes, over the 1 MiB a ConfigMap may hold", size)
	}
}

func (c *checker) checkSecret(o *Object) {
	for k, v := range mapAt(o.Body, "data") {
		if !configKey.MatchString(k) {
			c.errorf(o, "data key %q is not a valid Secret key", k)
		}
		if _, err := base64.StdEncoding.DecodeString(str(v)); err != nil {
			c.errorf(o, "data.%s is not base64", k)
		}
	}
	for k, v := range mapAt(o.Body, "stringData") {
		if !configKey.MatchString(k) {
			c.errorf(o, "stringData key %q is not a valid Secret key", k)
		}
		if _, ok := v.(string); !ok {
			c.errorf(o, "stringData.%s must be a string", k)
		}
	}
}

// --- disruption budgets and monitoring -------------------------------------------------------------

func (c *checker) checkPDB(o *Object) {
	spec := mapAt(o.Body, "spec")
	_, hasMin := spec["minAvailable"]
	_, hasMax := spec["maxUnavailable"]
	if hasMin == hasMax {
		c.errorf(o, "needs exactly one of minAvailable, maxUnavailable")
	}
	matched := false
	for _, pt := range c.podTemplates() {
		matched = matched || matchesLabelSelector(mapAt(spec, "selector"), pt.labels)
	}
	if !matched {
		c.errorf(o, "spec.selector selects no workload's pods")
	}
}

func (c *checker) checkServiceMonitor(o *Object) {
	spec := mapAt(o.Body, "spec")
	var services []*Object
	for _, s := range c.objects {
		if s.Kind() == "Service" && matchesLabelSelector(mapAt(spec, "selector"), stringMap(s.Body, "metadata", "labels")) {
			services = append(services, s)
		}
	}
	if len(services) == 0 {
		c.errorf(o, "spec.selector selects no Service")
	}
	if ns := listAt(spec, "namespaceSelector", "matchNames"); len(ns) > 0 && !contains(toStrings(ns), c.opts.Namespace) {
		c.errorf(o, "namespaceSelector does not include the release namespace %q", c.opts.Namespace)
	}
	endpoints := listAt(spec, "endpoints")
	if len(endpoints) == 0 {
		c.errorf(o, "spec.endpoints is empty")
	}
	for _, e := range endpoints {
		port := str(at(e, "port"))
		for _, s := range services {
			found := false
			for _, p := range listAt(s.Body, "spec", "ports") {
				found = found || str(at(p, "name")) == port
			}
			if !found {
				c.errorf(o, "endpoint port %q is not a port of %s", port, s.ID())
			}
		}
	}
}

func toStrings(l []interface{}) []string {
	out := make([]string, len(l))
	for i, v := range l {
		out[i] = str(v)
	}
	return out
}

func (c *checker) checkPrometheusRule(o *Object) {
	groups := listAt(o.Body, "spec", "groups")
	if len(groups) == 0 {
		c.errorf(o, "spec.groups is empty")
	}
	names := map[string]bool{}
	for _, g := range groups {
		name := str(at(g, "name"))
		if name == "" || names[name] {
			c.errorf(o, "group name %q is empty or used twice", name)
		}
		names[name] = true
		rules := listAt(g, "rules")
		if len(rules) == 0 {
			c.errorf(o, "group %s has no rules", name)
		}
		for i, r := range rules {
			alert, record := str(at(r, "alert")), str(at(r, "record"))
			if (alert == "") == (record == "") {
				c.errorf(o, "group %s rule %d: needs exactly one of alert, record", name, i)
			}
			if strings.TrimSpace(str(at(r, "expr"))) == "" {
				c.errorf(o, "group %s rule %d (%s%s): expr is empty", name, i, alert, record)
			}
		}
	}
}

// --- distill service configs -----------------------------------------------------------------------

// checkServiceConfigs reads the config file each service container is started with (--config, from a
// mounted ConfigMap) and checks it against the manifests: its listen ports are the container's grpc and
// metrics (and http) ports, and every *_address it dials is a rendered Service's port.
func (c *checker) checkServiceConfigs() {
	for _, pt := range c.podTemplates() {
		for _, ct := range listAt(pt.spec, "containers") {
			args := toStrings(listAt(ct, "args"))
			path := ""
			for i := 0; i+1 < len(args); i++ {
				if args[i] == "--config" {
					path = args[i+1]
				}
			}
			if path == "" {
				continue
			}
			o := pt.owner
			config, err := c.mountedFile(pt.spec, ct, path)
			if err != nil {
				c.errorf(o, "--config %s: %v", path, err)
				continue
			}
			var cfg map[string]interface{}
			if err := yaml3.Unmarshal([]byte(config), &cfg); err != nil {
				c.errorf(o, "--config %s: %v", path, err)
				continue
			}
			ports := map[string]int{}
			for _, p := range listAt(ct, "ports") {
				n, _ := intAt(p, "containerPort")
				ports[str(at(p, "name"))] = n
			}
			c.checkListen(o, path, "server.grpc_address", str(at(cfg, "server", "grpc_address")), ports["grpc"])
			c.checkListen(o, path, "server.metrics_address", str(at(cfg, "server", "metrics_address")), ports["metrics"])
			if n, ok := ports["http"]; ok {
				addr := str(at(cfg, "inference", "http_address"))
				if addr == "" && at(cfg, "inference", "http_address") == nil {
					addr = "0.0.0.0:8000" // the inference service's default
				}
				c.checkListen(o, path, "inference.http_address", addr, n)
			}
			for section, v := range cfg {
				for key, val := range mapAt(v) {
					if strings.HasSuffix(key, "_address") && key != "http_address" && key != "grpc_address" &&
						key != "metrics_address" {
						c.checkDial(o, path, section+"."+key, str(val))
					}
				}
			}
		}
	}
}

func (c *checker) checkListen(o *Object, file, key, addr string, port int) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		c.errorf(o, "%s: %s %q is not HOST:PORT", file, key, addr)
		return
	}
	if p != strconv.Itoa(port) {
		c.errorf(o, "%s: %s %q listens on another port than the container declares (%d)", file, key, addr, port)
	}
}

func (c *checker) checkDial(o *Object, file, key, addr string) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		c.errorf(o, "%s: %s %q is not HOST:PORT", file, key, addr)
		return
	}
	port, _ := strconv.Atoi(p)
	name := strings.TrimSuffix(host, "."+c.opts.Namespace+".svc")
	svc := c.find("Service", name)
	if svc == nil || strings.Contains(name, ".") {
		c.errorf(o, "%s: %s %q is not a rendered Service in namespace %s", file, key, addr, c.opts.Namespace)
		return
	}
	if !serviceHasPort(svc, port) {
		c.errorf(o, "%s: %s %q: Service %s has no port %d", file, key, addr, name, port)
	}
}

// mountedFile returns the content of the file at path as a container sees it, when it comes from a
// ConfigMap volume rendered by the chart.
func (c *checker) mountedFile(pod map[string]interface{}, ct interface{}, path string) (string, error) {
	for _, m := range listAt(ct, "volumeMounts") {
		mountPath := strings.TrimSuffix(str(at(m, "mountPath")), "/")
		if !strings.HasPrefix(path, mountPath+"/") {
			continue
		}
		key := strings.TrimPrefix(path, mountPath+"/")
		for _, v := range listAt(pod, "volumes") {
			if str(at(v, "name")) != str(at(m, "name")) {
				continue
			}
			cm := c.find("ConfigMap", str(at(v, "configMap", "name")))
			if cm == nil {
				return "", fmt.Errorf("not mounted from a rendered ConfigMap")
			}
			data, ok := at(cm.Body, "data", key).(string)
			if !ok {
				return "", fmt.Errorf("ConfigMap %s has no key %q", cm.Name(), key)
			}
			return data, nil
		}
	}
	return "", fmt.Errorf("no volume is mounted there")
}
