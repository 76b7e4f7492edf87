package server

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// allowedImports lists, for every package of the module, the packages of
// the module it may import: the picture in DESIGN.md, written down.
// Protocol adapters → broker → (route, flow, message); broker knows no
// protocol, wire format, file format or configuration; store knows only
// message, record and vfs; message, the shared vocabulary, imports nothing of
// ours; only the composition root (server) reads the configuration and
// joins broker to store. A new package, or a new import, fails until it is
// listed here — adding the line is the moment to check it points down.
var allowedImports = map[string][]string{
	"cmd/tern":                          {"internal/auth", "internal/bench", "internal/certs", "internal/chaos", "internal/chaos/checker", "internal/config", "internal/server"},
	"internal/accept":                   {},
	"internal/amqp":                     {"internal/accept", "internal/auth", "internal/broker", "internal/certs", "internal/clock", "internal/message", "internal/outbox", "internal/wire/amqp091"},
	"internal/auth":                     {},
	"internal/bench":                    {"internal/wire/mqtt"},
	"internal/broker":                   {"internal/auth", "internal/clock", "internal/flow", "internal/message", "internal/route"},
	"internal/certs":                    {},
	"internal/broker/memstore":          {"internal/broker", "internal/message"},
	"internal/chaos":                    {"internal/chaos/checker"},
	"internal/chaos/checker":            {},
	"internal/clock":                    {},
	"internal/cluster":                  {"internal/broker", "internal/clock", "internal/cluster/forward", "internal/cluster/meta", "internal/cluster/raftnode", "internal/cluster/transport", "internal/cluster/wal", "internal/vfs"},
	"internal/cluster/clustertest":      {"internal/clock", "internal/cluster/raftnode", "internal/cluster/transport/memnet", "internal/cluster/wal", "internal/vfs"},
	"internal/cluster/forward":          {"internal/broker", "internal/clock", "internal/cluster/transport", "internal/message", "internal/record"},
	"internal/cluster/meta":             {"internal/broker"},
	"internal/cluster/raftnode":         {"internal/clock", "internal/cluster/transport"},
	"internal/cluster/solo":             {"internal/broker", "internal/clock", "internal/cluster/raftnode", "internal/cluster/wal", "internal/vfs"},
	"internal/cluster/transport":        {},
	"internal/cluster/transport/memnet": {"internal/clock", "internal/cluster/transport"},
	"internal/cluster/wal":              {"internal/record", "internal/vfs"},
	"internal/config":                   {"internal/auth", "internal/clock", "internal/flow"},
	"internal/console":                  {},
	"internal/flow":                     {"internal/clock"},
	"internal/message":                  {},
	"internal/mgmt":                     {"internal/amqp", "internal/auth", "internal/broker", "internal/console", "internal/flow", "internal/message", "internal/mqtt", "internal/store"},
	"internal/mqtt":                     {"internal/accept", "internal/auth", "internal/broker", "internal/certs", "internal/clock", "internal/message", "internal/outbox", "internal/route", "internal/vfs", "internal/wire/mqtt"},
	"internal/outbox":                   {},
	"internal/record":                   {},
	"internal/route":                    {"internal/message"},
	"internal/server":                   {"internal/amqp", "internal/auth", "internal/broker", "internal/certs", "internal/clock", "internal/cluster", "internal/cluster/solo", "internal/config", "internal/flow", "internal/message", "internal/mgmt", "internal/mqtt", "internal/store", "internal/vfs"},
	"internal/store":                    {"internal/message", "internal/record", "internal/vfs"},
	"internal/testkit":                  {"internal/certs", "internal/clock", "internal/config", "internal/server", "internal/wire/amqp091", "internal/wire/mqtt"},
	"internal/testkit/freeport":         {},
	"internal/vfs":                      {},
	"internal/wire/amqp091":             {"internal/message"},
	"internal/wire/amqp091/gen":         {},
	"internal/wire/mqtt":                {},
	"test/clusterbench":                 {},
}

// TestImportsPointDown checks every package's imports from the module (not
// its tests') against allowedImports.
func TestImportsPointDown(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/tern-broker/tern/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/tern-broker/tern/"
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		seen[pkg] = true
		allowed, ok := allowedImports[pkg]
		if !ok {
			t.Errorf("%s is not in allowedImports: list the packages of ours it may import", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			dep, ours := strings.CutPrefix(imp, mod)
			if ours && !slices.Contains(allowed, dep) {
				t.Errorf("%s imports %s, which allowedImports does not list", pkg, dep)
			}
		}
	}
	for pkg := range allowedImports {
		if !seen[pkg] {
			t.Errorf("allowedImports lists %s, which no longer exists", pkg)
		}
	}
}
