package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// nodesRequest is the API call of `tern cluster add-node NAME ADDR
// [--standby]` and `tern cluster remove-node NAME`.
func nodesRequest(cmd string, args []string, standby bool) (method, path, body string) {
	if cmd != "add-node" { // remove-node, or remove
		return http.MethodDelete, "/api/cluster/nodes/" + url.PathEscape(args[0]), ""
	}
	role := "voter"
	if standby {
		role = "standby"
	}
	b, _ := json.Marshal(map[string]string{"name": args[0], "addr": args[1], "role": role})
	return http.MethodPost, "/api/cluster/nodes", string(b)
}

// trailingFlags moves flags written after the positional arguments (`tern
// cluster add-node n4 127.0.0.1:25675 --standby`) before them: the flag
// package stops at the first argument that is not a flag.
func trailingFlags(args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			rest = append(rest, args[i+1:]...)
			return append(flags, append([]string{"--"}, rest...)...)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			// --http (--url), --user and the patterns take a value (unless written --http=URL).
			if (name == "http" || name == "url" || name == "user" || name == "vhost-pattern" || name == "queue-pattern") && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		default:
			rest = append(rest, a)
		}
	}
	if len(rest) > 0 {
		flags = append(flags, "--")
	}
	return append(flags, rest...)
}
