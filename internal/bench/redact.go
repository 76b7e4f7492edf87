package bench

import (
	"net/url"
	"strings"
)

// Redacted returns the broker URL with its password replaced by "xxxxx", for
// anything the run prints or saves: results get pasted into issues and
// dashboards, and the URL's password is the broker's. A comma-separated
// list (a cluster's nodes) is redacted URL by URL.
func Redacted(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "(unparseable URL)"
			continue
		}
		parts[i] = u.Redacted()
	}
	return strings.Join(parts, ",")
}
