package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

const miniSpec = `{"definitions": {
  "io.k8s.api.apps.v1.Deployment": {
    "type": "object",
    "required": ["spec"],
    "properties": {
      "kind": {"type": "string"},
      "spec": {"$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"}
    },
    "x-kubernetes-group-version-kind": [{"group": "apps", "kind": "Deployment", "version": "v1"}]
  },
  "io.k8s.api.apps.v1.DeploymentSpec": {
    "type": "object",
    "properties": {
      "maxSurge": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString"},
      "labels": {"type": "object", "additionalProperties": {"type": "string"}}
    }
  },
  "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string", "format": "int-or-string"},
  "io.k8s.api.core.v1.Service": {
    "type": "object",
    "properties": {"kind": {"type": "string"}},
    "x-kubernetes-group-version-kind": [{"group": "", "kind": "Service", "version": "v1"}]
  },
  "io.k8s.api.networking.v1.Ingress": {
    "type": "object",
    "x-kubernetes-group-version-kind": [{"group": "networking.k8s.io", "kind": "Ingress", "version": "v1"}]
  },
  "io.k8s.api.core.v1.Unrelated": {"type": "object", "properties": {"x": {"type": "string"}}}
}}`

func TestConvert(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "swagger.json")
	if err := os.WriteFile(spec, []byte(miniSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "schemas")
	if err := run([]string{"-spec", spec, "-out", out}, io.Discard); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	// kubeconform's file names: kind, first group label (none for core), version.
	if want := []string{"deployment-apps-v1.json", "ingress-networking-v1.json", "service-v1.json"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("files %q, want %q", names, want)
	}

	var d struct {
		Ref         string                    `json:"$ref"`
		Definitions map[string]map[string]any `json:"definitions"`
	}
	b, err := os.ReadFile(filepath.Join(out, "deployment-apps-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.Ref != "#/definitions/io.k8s.api.apps.v1.Deployment" {
		t.Errorf("$ref = %q", d.Ref)
	}
	// Only what Deployment reaches, not the unrelated definitions.
	if len(d.Definitions) != 3 {
		t.Errorf("%d definitions, want Deployment, DeploymentSpec and IntOrString", len(d.Definitions))
	}
	dep := d.Definitions["io.k8s.api.apps.v1.Deployment"]
	if dep["additionalProperties"] != false {
		t.Error("an object with properties must reject unknown fields")
	}
	props := dep["properties"].(map[string]any)
	if typ := props["kind"].(map[string]any)["type"]; !reflect.DeepEqual(typ, []any{"string", "null"}) {
		t.Errorf("optional kind: type %v, want string or null", typ)
	}
	if _, ok := props["spec"].(map[string]any)["$ref"]; !ok {
		t.Errorf("required spec must stay a plain reference (not nullable): %v", props["spec"])
	}
	spec2 := d.Definitions["io.k8s.api.apps.v1.DeploymentSpec"]["properties"].(map[string]any)
	if ap := spec2["labels"].(map[string]any)["additionalProperties"]; !reflect.DeepEqual(ap, map[string]any{"type": "string"}) {
		t.Errorf("a map's additionalProperties must be kept, got %v", ap)
	}
	ios := d.Definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
	if want := []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}; !reflect.DeepEqual(ios["oneOf"], want) {
		t.Errorf("IntOrString = %v, want string or integer", ios)
	}
}

func TestConvertRejectsBrokenSpecs(t *testing.T) {
	if _, err := convert(nil); err == nil {
		t.Error("no definitions: want an error")
	}
	_, err := convert(map[string]map[string]any{
		"a.B": {"properties": map[string]any{"c": map[string]any{"$ref": "#/definitions/missing"}},
			"x-kubernetes-group-version-kind": []any{map[string]any{"group": "", "version": "v1", "kind": "B"}}},
	})
	if err == nil {
		t.Error("dangling reference: want an error")
	}
}
