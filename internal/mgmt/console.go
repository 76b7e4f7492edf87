package mgmt

import (
	"net/http"
	"slices"

	"github.com/tern-broker/tern/internal/console"
)

// handleConsole serves the web console (internal/console) at / and its
// assets under /console/. The files are the same for everyone and hold
// nothing about this broker, so withConsole opens them to GET without
// credentials; every /api/ call the console makes still needs a login.
func handleConsole(mux *http.ServeMux) {
	h := console.Handler()
	mux.Handle("GET /{$}", h)
	mux.Handle("GET "+console.Prefix, h)
}

// withConsole adds the console's paths to the open paths and wraps the
// authorized handler so that the console's own API calls are refused
// without a Basic challenge (console.Quiet).
func withConsole(a Access, authorized func(Access) http.Handler) http.Handler {
	a.OpenPaths = append(slices.Clone(a.OpenPaths), console.Paths()...)
	return console.Quiet(authorized(a))
}
