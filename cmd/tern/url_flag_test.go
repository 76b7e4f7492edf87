package main

import (
	"bytes"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// user7 1.9: tern ctl's --url and tern cluster's --http name the same
// thing; each command takes both spellings.
func TestCtlAndClusterTakeBothURLSpellings(t *testing.T) {
	g := &ctlGlobals{url: "http://default"}
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs, true)
	if err := fs.Parse([]string{"--http", "http://x:2", "list", "queues"}); err != nil || g.url != "http://x:2" {
		t.Fatalf("tern ctl --http: url %q, err %v", g.url, err)
	}

	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/cluster" {
			hits.Add(1)
		}
		_, _ = w.Write([]byte(`{"nodes":[],"groups":[]}`))
	}))
	defer srv.Close()
	for _, args := range [][]string{
		{"status", "--json", "--http", srv.URL},
		{"status", "--json", "--url", srv.URL},
		{"status", "--url", srv.URL, "--json"},
	} {
		var out, errOut bytes.Buffer
		before := hits.Load()
		if code := runCluster(args, &out, &errOut); code != 0 || hits.Load() != before+1 {
			t.Errorf("tern cluster %q: exit %d, server asked %d times: %s%s", args, code, hits.Load()-before, out.String(), errOut.String())
		}
	}
}
