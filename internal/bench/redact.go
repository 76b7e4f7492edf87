package bench

import "net/url"

// Redacted returns the broker URL with its password replaced by "xxxxx", for
// anything the run prints or saves: results get pasted into issues and
// dashboards, and the URL's password is the broker's.
func Redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
