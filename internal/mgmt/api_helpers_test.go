package mgmt_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/testkit"
)

// apiCall sends method path as user (guest when ""), with body as JSON
// when it is not nil, and returns the status and the body.
func apiCall(t *testing.T, s *testkit.Server, method, path, user, password string, body any, hdr ...string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = strings.NewReader(string(b))
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(raw))
	}
	req, err := http.NewRequest(method, s.HTTPURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if user == "" {
		user, password = "guest", "guest"
	}
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// guest sends a request as guest (an administrator) and fails the test
// unless the status is want.
func guest(t *testing.T, s *testkit.Server, method, path string, body any, want int, hdr ...string) []byte {
	t.Helper()
	code, raw := apiCall(t, s, method, path, "", "", body, hdr...)
	if code != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, code, raw, want)
	}
	return raw
}

func getList(t *testing.T, s *testkit.Server, path string) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal(guest(t, s, "GET", path, nil, http.StatusOK), &out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return out
}

func getObject(t *testing.T, s *testkit.Server, path string) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal(guest(t, s, "GET", path, nil, http.StatusOK), &out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return out
}

// hasFields fails unless obj has every field RabbitMQ documents for its
// kind (dotted names are nested).
func hasFields(t *testing.T, what string, obj map[string]any, fields ...string) {
	t.Helper()
	var missing []string
	for _, f := range fields {
		cur, present := any(obj), true
		for _, part := range strings.Split(f, ".") {
			m, ok := cur.(map[string]any)
			if !ok {
				present = false
				break
			}
			if cur, ok = m[part]; !ok {
				present = false
				break
			}
		}
		if !present {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Errorf("%s lacks RabbitMQ's fields %v: %v", what, missing, obj)
	}
}

// find returns the item whose field key is value.
func find(items []map[string]any, key, value string) map[string]any {
	for _, it := range items {
		if it[key] == value {
			return it
		}
	}
	return nil
}

// errorBody decodes RabbitMQ's {"error","reason"} body.
func errorBody(t *testing.T, raw []byte) (string, string) {
	t.Helper()
	var e struct{ Error, Reason string }
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("error body %q: %v", raw, err)
	}
	return e.Error, e.Reason
}

func itoa(v any) string { return strconv.Itoa(int(v.(float64))) }

func pathEscape(s string) string { return url.PathEscape(s) }
