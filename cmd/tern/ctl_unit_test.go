package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestParseInterleaved(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  []string
		json bool
		v    string
	}{
		{[]string{"queues", "--json"}, []string{"queues"}, true, "/"},
		{[]string{"--vhost", "prod", "queues"}, []string{"queues"}, false, "prod"},
		{[]string{"a", "--vhost=x", "b", "--json", "c"}, []string{"a", "b", "c"}, true, "x"},
		{[]string{"max-queues", "--", "-1", "--json"}, []string{"max-queues", "-1", "--json"}, false, "/"},
		{nil, nil, false, "/"},
	} {
		g := &ctlGlobals{vhost: "/"}
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		g.register(fs, true)
		pos, err := parseInterleaved(fs, tc.args)
		if err != nil || !slices.Equal(pos, tc.pos) || g.json != tc.json || g.vhost != tc.v {
			t.Errorf("%q: pos %q json %v vhost %q err %v", tc.args, pos, g.json, g.vhost, err)
		}
	}
}

// TestGlobalsSurviveTheCommandsFlagSet: a global flag given before the
// command name keeps its value when the command registers the globals
// again.
func TestGlobalsSurviveTheCommandsFlagSet(t *testing.T) {
	g := &ctlGlobals{url: "http://default", user: "guest", vhost: "/"}
	gfs := flag.NewFlagSet("g", flag.ContinueOnError)
	g.register(gfs, true)
	if err := gfs.Parse([]string{"--url", "http://x:1", "--user", "admin", "list", "queues"}); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	g.register(fs, true)
	if _, err := parseInterleaved(fs, gfs.Args()[1:]); err != nil {
		t.Fatal(err)
	}
	if g.url != "http://x:1" || g.user != "admin" {
		t.Fatalf("globals after the command's parse: %+v", g)
	}
}

func TestAPIPathEscapesEachSegment(t *testing.T) {
	for in, want := range map[[3]string]string{
		{"queues", "/", "q 1"}:    "/api/queues/%2F/q%201",
		{"queues", "a/b", "x?y"}:  "/api/queues/a%2Fb/x%3Fy",
		{"users", "bob", "%"}:     "/api/users/bob/%25",
		{"exchanges", "/", "a#b"}: "/api/exchanges/%2F/a%23b",
	} {
		if got := apiPath(in[:]...); got != want {
			t.Errorf("apiPath%q = %s, want %s", in, got, want)
		}
	}
}

func TestAPIErrorExitCodes(t *testing.T) {
	body := []byte(`{"error":"Object Not Found","reason":"no queue 'q'"}`)
	for status, code := range map[int]int{404: exitNotFound, 401: exitRefused, 403: exitRefused, 429: exitRefused,
		400: exitRejected, 405: exitRejected, 413: exitRejected, 500: exitServer, 503: exitServer} {
		err := apiError(status, body, "GET /api/x")
		ce, ok := err.(*ctlError)
		if !ok || ce.code != code || !strings.Contains(ce.msg, "no queue 'q'") {
			t.Errorf("HTTP %d: %v (code %d), want exit %d with the reason", status, err, ce.code, code)
		}
	}
	if err := apiError(502, []byte("<html>bad gateway</html>"), "GET /api/x"); !strings.Contains(err.Error(), "bad gateway") {
		t.Errorf("a non-JSON body is not shown: %v", err)
	}
}

// FuzzCtlTable: whatever the server's JSON and the --columns, the table
// has exactly one line per row plus the header (a value cannot forge a
// line), and the columns' count is the same on every line.
func FuzzCtlTable(f *testing.F) {
	f.Add(`[{"name":"q","messages":3,"arguments":{"x":1}}]`, "name,messages,arguments")
	f.Add(`[{"name":"a\nb\tc","tags":["x","y"]},{"queue":{"name":"n"}}]`, "name,tags,queue.name")
	f.Add(`[{"name":"a\fb\u000bc\u2028d\r"}]`, "name")
	f.Add(`[{}]`, "")
	f.Add(`[{"a":null,"b":true,"c":1.5e300}]`, "a,b,c,d.e")
	f.Fuzz(func(t *testing.T, raw, cols string) {
		var rows []map[string]any
		if decodeJSON([]byte(raw), &rows) != nil {
			return
		}
		c := splitList(cols)
		if len(c) == 0 {
			c = []string{"name"}
		}
		var out bytes.Buffer
		if err := printTable(&out, c, rows); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != len(rows)+1 {
			t.Fatalf("%d rows printed as %d lines:\n%s", len(rows), len(lines), out.String())
		}
		if _, err := json.Marshal(project(c, rows)); err != nil {
			t.Fatal(err)
		}
	})
}
