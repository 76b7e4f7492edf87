package amqp091

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedCodecIsCurrent regenerates the codec from the specification
// and fails if methods_gen.go differs: the generated file must never be
// edited by hand or left stale.
func TestGeneratedCodecIsCurrent(t *testing.T) {
	// The specification lives in the repository, so a fresh clone checks
	// (and regenerates) without anything beside the checkout.
	spec := filepath.Join("spec", "amqp-rabbitmq-0.9.1.json")
	if _, err := os.Stat(spec); err != nil {
		t.Fatalf("the AMQP specification must be in the repository: %v", err)
	}
	out := filepath.Join(t.TempDir(), "methods_gen.go")
	if b, err := exec.Command("go", "run", "./gen", "-spec", spec, "-out", out).CombinedOutput(); err != nil {
		t.Fatalf("generator: %v\n%s", err, b)
	}
	want, _ := os.ReadFile(out)
	have, _ := os.ReadFile("methods_gen.go")
	if !bytes.Equal(want, have) {
		t.Fatal("methods_gen.go is stale or hand-edited: run go generate ./internal/wire/amqp091")
	}
}
