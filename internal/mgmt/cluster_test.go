package mgmt

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
)

// monitor is a store with one user allowed to read the API.
func monitor() *auth.Store {
	users := auth.NewStore()
	users.Put(auth.User{Name: "watcher", PasswordHash: auth.HashPassword("pw"), Tags: []string{"monitoring"}})
	return users
}

func TestClusterEndpointAndRaftMetrics(t *testing.T) {
	src := Sources{Broker: func() broker.Stats { return broker.Stats{} }, Users: monitor(), Access: Access{OpenPaths: []string{"/metrics"}}}
	single := httptest.NewServer(Handler(src, false))
	defer single.Close()
	req, _ := http.NewRequest(http.MethodGet, single.URL+"/api/cluster", nil)
	req.SetBasicAuth("watcher", "pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a single node serves /api/cluster: %s", resp.Status)
	}
	body := get(t, single.URL+"/metrics")
	if strings.Contains(body, "tern_raft_") {
		t.Fatal("a single node exports tern_raft_ metrics")
	}

	src.Cluster = func() any { return map[string]any{"node": "n1"} }
	src.Raft = func() RaftStats {
		return RaftStats{Groups: 3, GroupsLed: 1, Elections: 2, LeaderChanges: 4,
			CommitLatency:   Histogram{Count: 2, Sum: 0.01, Buckets: map[float64]uint64{0.001: 1, 0.1: 2}},
			WALFsyncLatency: Histogram{Count: 1, Sum: 0.002, Buckets: map[float64]uint64{0.005: 1}},
			Peers:           []RaftPeer{{Name: "n2", Reachable: true}, {Name: "n3"}}}
	}
	node := httptest.NewServer(Handler(src, false))
	defer node.Close()
	var doc map[string]any
	if err := json.Unmarshal([]byte(get(t, node.URL+"/api/cluster")), &doc); err != nil || doc["node"] != "n1" {
		t.Fatalf("/api/cluster: %v %v", doc, err)
	}
	body = get(t, node.URL+"/metrics")
	for _, want := range []string{"tern_raft_groups 3", "tern_raft_groups_led 1", "tern_raft_elections_total 2",
		"tern_raft_leader_changes_total 4", `tern_raft_commit_latency_seconds_bucket{le="0.1"} 2`,
		"tern_raft_commit_latency_seconds_count 2", "tern_raft_wal_fsync_seconds_count 1",
		`tern_raft_peer_reachable{node="n2"} 1`, `tern_raft_peer_reachable{node="n3"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// get reads url as the monitoring user.
func get(t *testing.T, url string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.SetBasicAuth("watcher", "pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	return string(b)
}

func TestPromoteEndpoint(t *testing.T) {
	var promoted []string
	src := Sources{Broker: func() broker.Stats { return broker.Stats{} }, Cluster: func() any { return map[string]any{"node": "n1"} },
		Promote: func(_ context.Context, node string) error {
			if node != "n4" {
				return BadRequest{Err: errors.New("no such node")}
			}
			promoted = append(promoted, node)
			return nil
		}}
	srv := httptest.NewServer(Handler(src, false))
	defer srv.Close()
	post := func(body string, auth bool) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/cluster/promote", strings.NewReader(body))
		if auth {
			req.SetBasicAuth("admin", "pw")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(`{"node":"n4"}`, false); code != http.StatusUnauthorized {
		t.Fatalf("without credentials: %d", code)
	}
	users := auth.NewStore()
	users.Put(auth.User{Name: "admin", PasswordHash: auth.HashPassword("pw"), VHosts: []string{"*"}, Tags: []string{AdministratorTag}})
	src.Users = users
	srv.Config.Handler = Handler(src, false)
	for _, tc := range []struct {
		body string
		want int
	}{{`{"node":"n4"}`, 200}, {`{"node":"n9"}`, 400}, {`{}`, 400}, {`not json`, 400}} {
		if code := post(tc.body, true); code != tc.want {
			t.Errorf("%s: %d, want %d", tc.body, code, tc.want)
		}
	}
	if len(promoted) != 1 {
		t.Fatalf("promoted %v", promoted)
	}
}

func TestRemoveNodeEndpoint(t *testing.T) {
	var removed []string
	users := auth.NewStore()
	users.Put(auth.User{Name: "admin", PasswordHash: auth.HashPassword("pw"), VHosts: []string{"*"}, Tags: []string{AdministratorTag}})
	src := Sources{Broker: func() broker.Stats { return broker.Stats{} }, Cluster: func() any { return map[string]any{"node": "n1"} }, Users: users,
		RemoveNode: func(_ context.Context, node string) error {
			switch node {
			case "n3":
				removed = append(removed, node)
				return nil
			case "n1":
				return errors.New("no quorum")
			}
			return BadRequest{Err: errors.New("no such node")}
		}}
	srv := httptest.NewServer(Handler(src, false))
	defer srv.Close()
	for _, tc := range []struct {
		node string
		auth bool
		want int
	}{{"n3", false, 401}, {"n3", true, 200}, {"n9", true, 400}, {"n1", true, 503}} {
		req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/api/cluster/nodes/"+tc.node, nil)
		if tc.auth {
			req.SetBasicAuth("admin", "pw")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("DELETE %s (credentials %v): %d, want %d", tc.node, tc.auth, resp.StatusCode, tc.want)
		}
	}
	if len(removed) != 1 {
		t.Fatalf("removed %v", removed)
	}
}
