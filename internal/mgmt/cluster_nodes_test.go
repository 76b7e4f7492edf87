package mgmt

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
)

func TestClusterNodesEndpoints(t *testing.T) {
	var calls []string
	users := auth.NewStore()
	users.Put(auth.User{Name: "admin", PasswordHash: auth.HashPassword("pw"), VHosts: []string{"*"}, Tags: []string{AdministratorTag}})
	users.Put(auth.User{Name: "app", PasswordHash: auth.HashPassword("pw"), VHosts: []string{"*"}})
	src := Sources{Broker: func() broker.Stats { return broker.Stats{} }, Cluster: func() any { return map[string]any{"node": "n1"} },
		Users: users,
		AddNode: func(_ context.Context, name, addr string, standby bool) error {
			switch name {
			case "n3":
				return BadRequest{Err: errors.New("n3 was removed")}
			case "slow":
				return errors.New("no quorum")
			}
			calls = append(calls, "add "+name+" "+addr+" "+map[bool]string{true: "standby", false: "voter"}[standby])
			return nil
		},
		RemoveNode: func(_ context.Context, name string) error {
			if name == "n9" {
				return BadRequest{Err: errors.New("no such node")}
			}
			calls = append(calls, "remove "+name)
			return nil
		}}
	srv := httptest.NewServer(Handler(src, false))
	defer srv.Close()
	do := func(method, path, body, user string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if user != "" {
			req.SetBasicAuth(user, "pw")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		method, path, body, user string
		want                     int
	}{
		{"POST", "/api/cluster/nodes", `{"name":"n4","addr":"127.0.0.1:25675"}`, "", 401},
		{"POST", "/api/cluster/nodes", `{"name":"n4","addr":"127.0.0.1:25675"}`, "app", 403},
		{"DELETE", "/api/cluster/nodes/n2", "", "", 401},
		{"POST", "/api/cluster/nodes", `{"name":"n4","addr":"127.0.0.1:25675","role":"voter"}`, "admin", 200},
		{"POST", "/api/cluster/nodes", `{"name":"n5","addr":"127.0.0.1:25676","role":"standby"}`, "admin", 200},
		{"POST", "/api/cluster/nodes", `{"name":"n6","addr":"127.0.0.1:25677","role":"leader"}`, "admin", 400},
		{"POST", "/api/cluster/nodes", `{"name":"n6"}`, "admin", 400},
		{"POST", "/api/cluster/nodes", `{"name":"n6","addr":"x:1","extra":1}`, "admin", 400},
		{"POST", "/api/cluster/nodes", `{"name":"n3","addr":"127.0.0.1:25674"}`, "admin", 400},
		{"POST", "/api/cluster/nodes", `{"name":"slow","addr":"127.0.0.1:25674"}`, "admin", 503},
		{"DELETE", "/api/cluster/nodes/n2", "", "admin", 200},
		{"DELETE", "/api/cluster/nodes/n9", "", "admin", 400},
	} {
		code, body := do(tc.method, tc.path, tc.body, tc.user)
		if code != tc.want {
			t.Errorf("%s %s %s as %q: %d %s, want %d", tc.method, tc.path, tc.body, tc.user, code, body, tc.want)
		}
		if code == 200 && !strings.Contains(body, `"node":"n1"`) {
			t.Errorf("%s %s answered %s, not the cluster status", tc.method, tc.path, body)
		}
	}
	want := []string{"add n4 127.0.0.1:25675 voter", "add n5 127.0.0.1:25676 standby", "remove n2"}
	if strings.Join(calls, "|") != strings.Join(want, "|") {
		t.Fatalf("calls %q, want %q", calls, want)
	}
}
