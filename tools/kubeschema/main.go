// Command kubeschema turns the Kubernetes OpenAPI v2 document (swagger.json,
// shipped in the k8s.io/kubernetes Go module under api/openapi-spec) into
// one standalone, strict JSON schema per resource kind, laid out the way
// kubeconform looks them up:
//
//	kubeschema -spec swagger.json -out DIR
//	kubeconform -strict -schema-location 'DIR/{{ .ResourceKind }}{{ .KindSuffix }}.json' manifests.yaml
//
// This lets CI validate Helm output against the schemas of an exact
// Kubernetes version without downloading anything but Go modules.
//
// Each file is {"$ref": "#/definitions/<the kind>", "definitions": {...}}
// with only the definitions that kind reaches. The conversion makes three
// changes to the OpenAPI schemas so that they validate what the API server
// accepts: objects with declared properties reject unknown fields (typos in
// a manifest are the mistakes worth catching), optional fields may be null
// (the server treats null as absent), and the int-or-string and quantity
// types accept both their forms.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "kubeschema:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("kubeschema", flag.ContinueOnError)
	fs.SetOutput(stderr)
	spec := fs.String("spec", "", "the Kubernetes swagger.json")
	out := fs.String("out", "", "directory to write the schemas into")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *spec == "" || *out == "" {
		return errors.New("-spec and -out are required")
	}
	b, err := os.ReadFile(*spec)
	if err != nil {
		return err
	}
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s: %w", *spec, err)
	}
	files, err := convert(doc.Definitions)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for name, schema := range files {
		data, err := json.Marshal(schema)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(*out, name), data, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "kubeschema: %d schemas in %s\n", len(files), *out)
	return nil
}

// convert returns the schema files by name.
func convert(defs map[string]map[string]any) (map[string]any, error) {
	if len(defs) == 0 {
		return nil, errors.New("the spec has no definitions")
	}
	fixed := make(map[string]any, len(defs))
	for name, d := range defs {
		fixed[name] = fixDefinition(name, d)
	}
	files := map[string]any{}
	for name, d := range defs {
		gvks, _ := d["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			gvk, _ := g.(map[string]any)
			group, _ := gvk["group"].(string)
			version, _ := gvk["version"].(string)
			kind, _ := gvk["kind"].(string)
			if kind == "" || version == "" {
				return nil, fmt.Errorf("%s: incomplete group-version-kind %v", name, gvk)
			}
			reached := map[string]any{}
			if err := closure(name, fixed, reached); err != nil {
				return nil, err
			}
			files[fileName(group, version, kind)] = map[string]any{
				"$ref":        "#/definitions/" + name,
				"definitions": reached,
			}
		}
	}
	return files, nil
}

// fileName is kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}.json:
// the kind in lower case, then the first label of the group (none for the
// core group) and the version.
func fileName(group, version, kind string) string {
	suffix := "-" + version
	if group != "" {
		suffix = "-" + strings.ToLower(strings.Split(group, ".")[0]) + suffix
	}
	return strings.ToLower(kind) + suffix + ".json"
}

const refPrefix = "#/definitions/"

// closure adds name and every definition it references to reached.
func closure(name string, defs map[string]any, reached map[string]any) error {
	if _, ok := reached[name]; ok {
		return nil
	}
	d, ok := defs[name]
	if !ok {
		return fmt.Errorf("reference to an unknown definition %q", name)
	}
	reached[name] = d
	for _, ref := range refs(d) {
		if err := closure(ref, defs, reached); err != nil {
			return err
		}
	}
	return nil
}

func refs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		if r, ok := v["$ref"].(string); ok {
			out = append(out, strings.TrimPrefix(r, refPrefix))
		}
		for _, x := range v {
			out = append(out, refs(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, refs(x)...)
		}
	}
	return out
}

// fixDefinition applies the changes described in the package comment.
func fixDefinition(name string, d map[string]any) any {
	switch {
	case strings.HasSuffix(name, ".util.intstr.IntOrString"):
		return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
	case strings.HasSuffix(name, ".api.resource.Quantity"):
		return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
	}
	return fixSchema(d)
}

func fixSchema(v any) any {
	switch s := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(s)+1)
		for k, x := range s {
			if k == "properties" {
				continue
			}
			out[k] = fixSchema(x)
		}
		props, ok := s["properties"].(map[string]any)
		if !ok {
			return out
		}
		required := stringList(s["required"])
		fixed := make(map[string]any, len(props))
		for p, ps := range props {
			f := fixSchema(ps)
			if !slices.Contains(required, p) {
				f = nullable(f)
			}
			fixed[p] = f
		}
		out["properties"] = fixed
		if _, set := s["additionalProperties"]; !set {
			out["additionalProperties"] = false
		}
		return out
	case []any:
		out := make([]any, len(s))
		for i, x := range s {
			out[i] = fixSchema(x)
		}
		return out
	}
	return v
}

// nullable lets an optional field be null.
func nullable(v any) any {
	s, ok := v.(map[string]any)
	if !ok {
		return v
	}
	if t, ok := s["type"].(string); ok {
		out := make(map[string]any, len(s))
		for k, x := range s {
			out[k] = x
		}
		out["type"] = []any{t, "null"}
		return out
	}
	if _, ok := s["$ref"]; ok {
		return map[string]any{"oneOf": []any{s, map[string]any{"type": "null"}}}
	}
	return v
}

func stringList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
