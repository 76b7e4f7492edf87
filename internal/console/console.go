package console

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var files embed.FS

// Prefix is where the console's assets are served; the page itself is /.
const Prefix = "/console/"

// Header marks a request sent by the console's scripts (Quiet).
const Header = "X-Tern-Console"

var static = func() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	return sub
}()

// Paths are the exact URL paths the console serves: "/" and one per
// embedded asset. The HTTP layer serves them to GET and HEAD without
// credentials.
func Paths() []string {
	out := []string{"/"}
	_ = fs.WalkDir(static, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && p != "index.html" {
			out = append(out, Prefix+p)
		}
		return nil
	})
	return out
}

// Handler serves the page at / and its assets under Prefix; anything else
// is 404. It is meant to be mounted at "GET /{$}" and "GET /console/".
func Handler() http.Handler {
	fsrv := http.FileServerFS(static)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// The page runs only its own scripts and talks only to its own
		// origin; no frame may embed it (clickjacking of the buttons).
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		// Revalidate on every load so an upgraded broker serves its own
		// console, not the browser's cached one.
		h.Set("Cache-Control", "no-cache")
		switch {
		case r.URL.Path == "/":
			http.ServeFileFS(w, r, static, "index.html")
		case strings.HasPrefix(r.URL.Path, Prefix):
			name := path.Clean(strings.TrimPrefix(r.URL.Path, Prefix))
			if name == "index.html" || name == "." || strings.HasPrefix(name, "..") {
				http.NotFound(w, r)
				return
			}
			if f, err := fs.Stat(static, name); err != nil || f.IsDir() {
				http.NotFound(w, r)
				return
			}
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/" + name
			fsrv.ServeHTTP(w, r2)
		default:
			http.NotFound(w, r)
		}
	})
}

// Quiet wraps the HTTP API so that its 401 answers to requests carrying
// Header lose the WWW-Authenticate challenge: the console shows its own
// login form, and a challenged fetch would make the browser pop up its
// native dialog (and remember what is typed there). Other clients —
// curl, rabbitmqadmin, dashboards — still get the challenge.
func Quiet(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(Header) == "" {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&quietWriter{ResponseWriter: w}, r)
	})
}

type quietWriter struct{ http.ResponseWriter }

func (q *quietWriter) WriteHeader(code int) {
	if code == http.StatusUnauthorized {
		q.Header().Del("WWW-Authenticate")
	}
	q.ResponseWriter.WriteHeader(code)
}

func (q *quietWriter) Write(b []byte) (int, error) { return q.ResponseWriter.Write(b) }

// Unwrap lets http.ResponseController reach the real writer.
func (q *quietWriter) Unwrap() http.ResponseWriter { return q.ResponseWriter }
