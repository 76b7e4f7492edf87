package console_test

import (
	"io"
	"io/fs"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/console"
	"github.com/tern-broker/tern/internal/testkit"
)

func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

// The page and every asset are served without credentials, byte for byte
// as embedded (nothing of the broker's state is templated in), with the
// headers that keep the page from being framed or running foreign scripts.
func TestStaticFilesOpenAndUnchanged(t *testing.T) {
	s := testkit.Start(t)
	paths := console.Paths()
	if !slices.Contains(paths, "/") || !slices.Contains(paths, "/console/app.js") || slices.Contains(paths, "/console/index.html") {
		t.Fatalf("Paths() = %v", paths)
	}
	for _, p := range paths {
		res, body := get(t, s.HTTPURL+p)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s without credentials: %d", p, res.StatusCode)
		}
		file := "static/index.html"
		if p != "/" {
			file = "static/" + strings.TrimPrefix(p, console.Prefix)
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if body != string(want) {
			t.Errorf("GET %s is not the file %s as written", p, file)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q", p, csp)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", p)
		}
	}
	res, _ := get(t, s.HTTPURL+"/console/app.js")
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("app.js Content-Type %q", ct)
	}
	// Neither a missing asset nor the embedded directory listing is served.
	for _, p := range []string{"/console/", "/console/missing.js", "/console/../api/overview", "/index.html", "/console/index.html"} {
		if res, _ := get(t, s.HTTPURL+p); res.StatusCode == http.StatusOK {
			t.Errorf("GET %s: 200", p)
		}
	}
}

// The API still needs a login; only the console's own calls lose the
// Basic challenge that would pop up the browser's dialog.
func TestAPIStillNeedsLogin(t *testing.T) {
	s := testkit.Start(t)
	res, _ := get(t, s.HTTPURL+"/api/overview")
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("GET /api/overview without credentials: %d, challenge %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	res, _ = get(t, s.HTTPURL+"/api/overview", console.Header, "1")
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") != "" {
		t.Fatalf("console's GET /api/overview without credentials: %d, challenge %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	res, _ = get(t, s.HTTPURL+"/api/overview", console.Header, "1", "Authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=") // guest:guest
	if res.StatusCode != http.StatusOK {
		t.Fatalf("console's GET /api/overview as guest: %d", res.StatusCode)
	}
	// The existing open paths are unchanged.
	if res, _ := get(t, s.HTTPURL+"/healthz"); res.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %d", res.StatusCode)
	}
}

// Every embedded script is referenced by the page, and the page refers to
// nothing outside its own origin.
func TestPageSelfContained(t *testing.T) {
	index, err := os.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	err = fs.WalkDir(os.DirFS("static"), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile("static/" + p)
		if err != nil {
			return err
		}
		for _, bad := range []string{"http://", "https://", "innerHTML", "eval(", "localStorage"} {
			if strings.Contains(string(b), bad) && !(bad == "http://" && strings.HasSuffix(p, ".svg")) {
				t.Errorf("%s contains %q", p, bad)
			}
		}
		if strings.HasSuffix(p, ".js") && !strings.Contains(string(index), `src="/console/`+p+`"`) {
			t.Errorf("index.html does not load %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
