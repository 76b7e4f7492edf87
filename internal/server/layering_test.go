package server

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsPointDown keeps the picture in DESIGN.md true: protocol
// adapters → broker → (route, flow); broker knows no protocol, wire format
// or configuration; only the composition root reads the configuration.
func TestImportsPointDown(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/tern-broker/tern/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/tern-broker/tern/"
	forbidden := map[string][]string{
		"internal/broker":       {"internal/amqp", "internal/wire", "internal/server", "internal/config", "internal/mgmt", "internal/auth", "internal/store", "internal/vfs", "internal/codec"},
		"internal/store":        {"internal/amqp", "internal/server", "internal/config", "internal/mgmt"},
		"internal/codec":        {"internal/amqp", "internal/store", "internal/server"},
		"internal/vfs":          {"internal/"},
		"internal/route":        {"internal/"},
		"internal/flow":         {"internal/"},
		"internal/wire/amqp091": {"internal/"},
		"internal/auth":         {"internal/"},
		"internal/amqp":         {"internal/server", "internal/config", "internal/mgmt", "internal/mqtt"},
		"internal/mqtt":         {"internal/server", "internal/config", "internal/mgmt", "internal/amqp", "internal/store"},
		"internal/mgmt":         {"internal/server", "internal/config"},
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		bans, ok := forbidden[pkg]
		if !ok {
			continue
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			dep := strings.TrimPrefix(imp, mod)
			for _, ban := range bans {
				if strings.HasPrefix(dep, ban) {
					t.Errorf("%s imports %s, which the layering forbids", pkg, dep)
				}
			}
		}
	}
}
