package mgmt

import (
	"net/http"
	"net/url"
	"strings"
)

// segRouter matches RabbitMQ's API paths segment by segment on the
// escaped path: a vhost is a path segment, and the default vhost "/" comes
// as %2F, which ServeMux's wildcards do not match. Patterns are
// "METHOD /api/x/{a}/literal"; a wildcard's value (unescaped) is the
// request's PathValue.
type segRouter struct{ routes []segRoute }

type segRoute struct {
	method string
	parts  []string
	h      http.HandlerFunc
}

func (s *segRouter) handle(pattern string, h http.HandlerFunc) {
	method, path, _ := strings.Cut(pattern, " ")
	s.routes = append(s.routes, segRoute{method: method, parts: strings.Split(strings.TrimPrefix(path, "/"), "/"), h: h})
}

func (s *segRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	segs := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	pathMatched := false
	for _, rt := range s.routes {
		vals, ok := rt.match(segs)
		if !ok {
			continue
		}
		pathMatched = true
		if rt.method != r.Method && !(rt.method == http.MethodGet && r.Method == http.MethodHead) {
			continue
		}
		for k, v := range vals {
			r.SetPathValue(k, v)
		}
		rt.h(w, r)
		return
	}
	if pathMatched {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed here")
		return
	}
	notFound(w)
}

func (rt segRoute) match(segs []string) (map[string]string, bool) {
	if len(segs) != len(rt.parts) {
		return nil, false
	}
	vals := map[string]string{}
	for i, p := range rt.parts {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			v, err := url.PathUnescape(segs[i])
			if err != nil || v == "" {
				return nil, false
			}
			vals[p[1:len(p)-1]] = v
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return vals, true
}
