package broker_test

import (
	"testing"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/broker/memstore"
)

// securityCommands makes users, permissions, topic permissions and limits,
// then changes and deletes some, so that a replay must apply them in order.
func securityCommands(t *testing.T, b *broker.Broker) {
	t.Helper()
	b.AddVHost("v")
	b.AddVHost("gone")
	for _, c := range []broker.Command{
		broker.PutUser{Name: "a", PasswordHash: auth.HashPassword("pa"), Tags: []string{"administrator"}},
		broker.PutUser{Name: "b", PasswordHash: auth.HashPassword("pb"), LoopbackOnly: true},
		broker.PutUser{Name: "c"},
		broker.SetPermission{VHost: "/", User: "a", Permission: auth.Permission{Configure: ".*", Write: ".*", Read: ".*"}},
		broker.SetPermission{VHost: "v", User: "b", Permission: auth.Permission{Configure: "^b", Write: "^b", Read: "^b"}},
		broker.SetPermission{VHost: "gone", User: "b", Permission: auth.Permission{Configure: ".*"}},
		broker.SetPermission{VHost: "/", User: "c", Permission: auth.Permission{Read: ".*"}},
		broker.SetTopicPermission{VHost: "v", User: "b", TopicPermission: auth.TopicPermission{Exchange: "amq.topic", Write: "^{username}"}},
		broker.SetVHostLimit{VHost: "v", Name: auth.LimitMaxQueues, Value: 4},
		broker.SetUserLimit{User: "b", Name: auth.LimitMaxChannels, Value: 9},
		broker.SetUserLimit{User: "c", Name: auth.LimitMaxChannels, Value: 1},
		broker.DeleteUser{Name: "c"},
		broker.PutUser{Name: "b", PasswordHash: auth.HashPassword("pb2"), LoopbackOnly: true},
		broker.DeleteVHost{Name: "gone"},
		// Applied after what they name was deleted (concurrent API
		// requests): no change.
		broker.SetPermission{VHost: "/", User: "c", Permission: auth.Permission{Read: ".*"}},
		broker.SetPermission{VHost: "gone", User: "b", Permission: auth.Permission{Read: ".*"}},
		broker.SetVHostLimit{VHost: "gone", Name: auth.LimitMaxQueues, Value: 1},
		broker.SetUserLimit{User: "c", Name: auth.LimitMaxChannels, Value: 1},
	} {
		if err := b.Change(c); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
}

func checkSecurity(t *testing.T, b *broker.Broker, when string) {
	t.Helper()
	u := b.Users()
	if got := len(u.Users()); got != 2 {
		t.Errorf("%s: %d users, want a and b", when, got)
	}
	if _, err := u.Authenticate("b", "pb2", nil); err == nil {
		t.Errorf("%s: b is loopback-only and logged in from nowhere", when)
	}
	if g := u.Grant("b", "v"); g == nil || !g.Allows(auth.Write, "b.q") || g.Allows(auth.Write, "a.q") {
		t.Errorf("%s: b's permission in v: %+v", when, g)
	}
	if u.Grant("c", "/") != nil || u.UserLimit("c", auth.LimitMaxChannels) != -1 {
		t.Errorf("%s: deleted user c left a permission or limit", when)
	}
	if b.VHost("gone") != nil || u.Grant("b", "gone") != nil {
		t.Errorf("%s: deleted vhost gone, or b's permission there, is back", when)
	}
	if tp := u.TopicPermissions(); len(tp) != 1 || tp[0].Write != "^{username}" {
		t.Errorf("%s: topic permissions %+v", when, tp)
	}
	if u.VHostLimit("v", auth.LimitMaxQueues) != 4 || u.UserLimit("b", auth.LimitMaxChannels) != 9 || u.VHostLimit("gone", auth.LimitMaxQueues) != -1 {
		t.Errorf("%s: limits", when)
	}
}

// TestSecurityCommandsReplay: on a single node the security commands are
// in the definitions log and in its snapshot; a new broker restoring the
// snapshot and replaying the log has the same users, permissions and
// limits.
func TestSecurityCommandsReplay(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	b := broker.New(broker.Config{Storage: st})
	securityCommands(t, b)
	checkSecurity(t, b, "live")

	replayed := broker.New(broker.Config{Storage: st})
	if err := replayed.Restore(st.Definitions()); err != nil {
		t.Fatal(err)
	}
	if err := replayed.Replay(st.Commands()); err != nil {
		t.Fatal(err)
	}
	checkSecurity(t, replayed, "replayed from the log")

	// Replay wrote a snapshot; a third broker starts from it alone.
	if len(st.Commands()) != 0 {
		t.Fatal("no snapshot after the replay")
	}
	fromSnap := broker.New(broker.Config{Storage: st})
	if err := fromSnap.Restore(st.Definitions()); err != nil {
		t.Fatal(err)
	}
	checkSecurity(t, fromSnap, "restored from the snapshot")
}

// TestSecurityCommandsReplicate: in a cluster the commands go through the
// metadata group to every node, and a node restoring the group's snapshot
// gets the same state, its own stale users and vhosts replaced.
func TestSecurityCommandsReplicate(t *testing.T) {
	t.Parallel()
	_, nodes := newCluster(t, 3, nil)
	securityCommands(t, nodes[1].b)
	for i, n := range nodes {
		checkSecurity(t, n.b, "node "+string(rune('1'+i)))
	}
	snap := sameEverywhere(t, nodes)

	late := broker.New(broker.Config{})
	late.AddVHost("stale")
	if err := late.Change(broker.PutUser{Name: "stale"}); err != nil {
		t.Fatal(err)
	}
	if err := late.RestoreDefinitions(snap); err != nil {
		t.Fatal(err)
	}
	checkSecurity(t, late, "restored from the group's snapshot")
	if _, ok := late.Users().Lookup("stale"); ok || late.VHost("stale") != nil {
		t.Error("what the snapshot lacks stayed")
	}
}
