package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/auth"
)

func TestStrayArgumentsAreAnError(t *testing.T) {
	t.Parallel()
	// A stray word last: before the fix the flag package stopped there and
	// the server ran (on the loopback flags given before it).
	code, out := runTern(t, "", serverArgs(t, "tern.toml")...)
	if code != 2 || !strings.Contains(out, `unexpected argument "tern.toml"`) {
		t.Errorf("tern server … tern.toml: exit %d, %q", code, out)
	}
	code, out = runTern(t, "", "bench", "--duration", "1s", "transient")
	if code != 2 || !strings.Contains(out, `unexpected argument "transient"`) {
		t.Errorf("tern bench … transient: exit %d, %q", code, out)
	}
}

func TestBadTernPprofIsAnError(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ternBin, serverArgs(t)...)
	cmd.Env = append(os.Environ(), "TERN_PPROF=yes")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("TERN_PPROF=yes: the server ran: %s", out)
	}
	if code := cmd.ProcessState.ExitCode(); code != 2 || err == nil || !strings.Contains(string(out), `TERN_PPROF "yes"`) {
		t.Fatalf("TERN_PPROF=yes: exit %d, %q", code, out)
	}
}

func TestHashPasswordReadsStandardInput(t *testing.T) {
	t.Parallel()
	code, out := runTern(t, "s3cret\n", "hash-password")
	hash := strings.TrimSpace(out)
	if code != 0 || !auth.VerifyPassword(hash, "s3cret") {
		t.Fatalf("echo s3cret | tern hash-password: exit %d, %q", code, out)
	}
	if code, out := runTern(t, "", "hash-password"); code == 0 {
		t.Fatalf("empty standard input hashed: %q", out)
	}
	code, out = runTern(t, "", "hash-password", "s3cret")
	if code != 0 || !auth.VerifyPassword(strings.TrimSpace(out), "s3cret") {
		t.Fatalf("tern hash-password s3cret: exit %d, %q", code, out)
	}
}
