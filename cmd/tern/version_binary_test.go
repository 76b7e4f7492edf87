package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var readmeBuild = regexp.MustCompile(`(?m)^CGO_ENABLED=0 go build .* -o tern \./cmd/tern$`)

// TestReadmeBuildsAStaticBinaryThatKnowsItsVersion runs the README's build
// command and checks that the binary is static and that `tern version`
// prints the version, the commit and the build date.
func TestReadmeBuildsAStaticBinaryThatKnowsItsVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a full build with -trimpath takes a minute")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed: the README's build command needs it")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	line := readmeBuild.Find(readme)
	if line == nil {
		t.Fatal("README.md has no `CGO_ENABLED=0 go build … -o tern ./cmd/tern` line")
	}
	bin := filepath.Join(t.TempDir(), "tern")
	cmd := exec.Command("sh", "-c", strings.Replace(string(line), " -o tern ", " -o '"+bin+"' ", 1))
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("README's build command: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary needs a dynamic loader: not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary links %v: not static", libs)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "tern ") || lines[0] == "tern dev" {
		t.Fatalf("version line: %q", out)
	}
	if want := "commit " + strings.TrimSpace(string(head)); lines[1] != want {
		t.Errorf("commit line %q, want %q", lines[1], want)
	}
	date, ok := strings.CutPrefix(lines[2], "built ")
	if !ok {
		t.Fatalf("build date line %q", lines[2])
	}
	if at, err := time.Parse(time.RFC3339, date); err != nil || time.Since(at) > time.Hour || time.Until(at) > time.Minute {
		t.Errorf("build date %q (%v): not the time of the build", date, err)
	}
}

func TestVersionWithoutLinkerFlagsSaysWhatItKnows(t *testing.T) {
	t.Parallel()
	code, out := runTern(t, "", "version")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[0], "tern ") || !strings.HasPrefix(lines[1], "commit ") ||
		!strings.Contains(lines[3], "go1.") {
		t.Fatalf("tern version: exit %d, %q", code, out)
	}
}
