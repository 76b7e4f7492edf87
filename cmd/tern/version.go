package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/tern-broker/tern/internal/server"
)

// Set by the linker, as the README's build command does:
// -X main.version=… -X main.commit=… -X main.buildDate=…
var (
	version   string
	commit    string
	buildDate string
)

// buildInfo is what `tern version` prints. Linker values win; otherwise the
// Go build info supplies the module version (go install …@v1.2.3) and the
// VCS revision and commit time (go build in a checkout with -buildvcs).
type buildInfo struct {
	Version, Commit, Date, DateKind, Go string
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: server.Version, Commit: commit, Date: buildDate, DateKind: "built", Go: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if b.Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		b.Version = info.Main.Version
	}
	var rev, at string
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if b.Commit == "" && rev != "" {
		b.Commit = rev
		if modified {
			b.Commit += " (with uncommitted changes)"
		}
	}
	if b.Date == "" && at != "" {
		b.Date, b.DateKind = at, "committed"
	}
	return b
}

func printVersion(w io.Writer) {
	b := readBuildInfo()
	orUnknown := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	fmt.Fprintf(w, "tern %s\ncommit %s\n%s %s\n%s %s/%s\n", b.Version, orUnknown(b.Commit), b.DateKind, orUnknown(b.Date),
		b.Go, runtime.GOOS, runtime.GOARCH)
}
