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

func TestClusterGrowEndpoints(t *testing.T) {
	var got []GrowRequest
	users := auth.NewStore()
	users.Put(auth.User{Name: "admin", PasswordHash: auth.HashPassword("pw"), VHosts: []string{"*"}, Tags: []string{AdministratorTag}})
	users.Put(auth.User{Name: "app", PasswordHash: auth.HashPassword("pw"), VHosts: []string{"*"}})
	do := func(_ context.Context, r GrowRequest) (any, error) {
		switch r.Node {
		case "n9":
			return nil, BadRequest{Err: errors.New("no such node")}
		case "slow":
			return nil, errors.New("no quorum")
		}
		got = append(got, r)
		return []map[string]string{{"queue": "q", "result": "grown"}}, nil
	}
	src := Sources{Broker: func() broker.Stats { return broker.Stats{} }, Cluster: func() any { return map[string]any{"node": "n1"} },
		Users: users, Grow: do, Shrink: do}
	srv := httptest.NewServer(Handler(src, false))
	defer srv.Close()
	for _, tc := range []struct {
		path, body, user string
		want             int
	}{
		{"/api/cluster/grow", `{"node":"n4"}`, "", 401},
		{"/api/cluster/grow", `{"node":"n4"}`, "app", 403},
		{"/api/cluster/grow", `{"node":"n4","queue_pattern":"^q","strategy":"even"}`, "admin", 200},
		{"/api/cluster/grow", `{"node":"n4","strategy":"most"}`, "admin", 400},
		{"/api/cluster/grow", `{"node":""}`, "admin", 400},
		{"/api/cluster/grow", `{"node":"n4","extra":1}`, "admin", 400},
		{"/api/cluster/grow", `{"node":"n9"}`, "admin", 400},
		{"/api/cluster/grow", `{"node":"slow"}`, "admin", 503},
		{"/api/cluster/shrink", `{"node":"n4","vhost_pattern":"/"}`, "admin", 200},
		{"/api/cluster/shrink", `{"node":"n4","strategy":"all"}`, "admin", 400},
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+tc.path, strings.NewReader(tc.body))
		if tc.user != "" {
			req.SetBasicAuth(tc.user, "pw")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s as %q: %d %s, want %d", tc.path, tc.body, tc.user, resp.StatusCode, b, tc.want)
		}
	}
	if len(got) != 2 || got[0] != (GrowRequest{Node: "n4", QueuePattern: "^q", Strategy: "even"}) || got[1] != (GrowRequest{Node: "n4", VHostPattern: "/"}) {
		t.Fatalf("requests passed on: %+v", got)
	}
}
