package mgmt

import (
	"net/http"
	"net/url"
	"strings"
)

// router dispatches the RabbitMQ-compatible API. It matches the escaped
// path segment by segment and unescapes each one, because RabbitMQ's
// clients name the default vhost "/" as %2F (GET /api/queues/%2F/q1),
// which net/http's ServeMux patterns do not match as a wildcard.
type router struct {
	routes []route
}

type route struct {
	method string
	segs   []string // literal segments, or "{name}" wildcards
	h      func(w http.ResponseWriter, r *http.Request, p params)
}

// params are a matched route's wildcards, unescaped.
type params map[string]string

// handle registers h for method and pattern ("/api/queues/{vhost}/{name}").
func (rt *router) handle(method, pattern string, h func(http.ResponseWriter, *http.Request, params)) {
	rt.routes = append(rt.routes, route{method: method, segs: strings.Split(strings.Trim(pattern, "/"), "/"), h: h})
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	segs := strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")
	pathMatched := false
	for _, ro := range rt.routes {
		p, ok := ro.match(segs)
		if !ok {
			continue
		}
		pathMatched = true
		if ro.method != r.Method && !(ro.method == http.MethodGet && r.Method == http.MethodHead) {
			continue
		}
		ro.h(w, r, p)
		return
	}
	if pathMatched {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Method Not Allowed")
		return
	}
	notFound(w)
}

func (ro route) match(segs []string) (params, bool) {
	if len(segs) != len(ro.segs) {
		return nil, false
	}
	var p params
	for i, s := range ro.segs {
		if strings.HasPrefix(s, "{") {
			v, err := url.PathUnescape(segs[i])
			if err != nil {
				return nil, false
			}
			if p == nil {
				p = params{}
			}
			p[s[1:len(s)-1]] = v
			continue
		}
		if s != segs[i] {
			return nil, false
		}
	}
	return p, true
}
