package amqp_test

import (
	"fmt"
	"testing"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/testkit"
)

// BenchmarkServerPathPermissions is BenchmarkServerPath with 100 users and
// 1,000 permission entries (each user in 10 vhosts), the publishing user
// (guest) holding a write expression that is not ".*": the publish path
// checks write access on every message. Compare its msg/s and allocs/op
// with BenchmarkServerPath's (guest with ".*"; docs/performance.md).
func BenchmarkServerPathPermissions(b *testing.B) {
	s := testkit.Start(b)
	withManyPermissions(b, s.Broker)
	serverPath(b, s.URL)
}

// withManyPermissions adds 9 vhosts and 99 users, gives every user a
// permission in each of the 10 vhosts (1,000 entries with guest's), and
// narrows guest's write expression in "/" to what the benchmark publishes
// to (the default exchange).
func withManyPermissions(b *testing.B, br *broker.Broker) {
	b.Helper()
	change := func(c broker.Command) {
		if err := br.Change(c); err != nil {
			b.Fatal(err)
		}
	}
	vhosts := []string{"/"}
	for i := 1; i < 10; i++ {
		v := fmt.Sprintf("vh-%d", i)
		br.AddVHost(v)
		vhosts = append(vhosts, v)
	}
	hash := auth.HashPassword("pw")
	users := []string{"guest"}
	for i := 1; i < 100; i++ {
		u := fmt.Sprintf("user-%02d", i)
		change(broker.PutUser{Name: u, PasswordHash: hash})
		users = append(users, u)
	}
	for _, u := range users {
		for _, v := range vhosts {
			p := auth.Permission{Configure: fmt.Sprintf(`^%s\.`, u), Write: fmt.Sprintf(`^(%s\.|amq\.default$)`, u), Read: fmt.Sprintf(`^%s\.`, u)}
			if u == "guest" && v == "/" {
				p = auth.Permission{Configure: ".*", Write: `^(amq\.default|in-[0-9]+)$`, Read: ".*"}
			}
			change(broker.SetPermission{VHost: v, User: u, Permission: p})
		}
	}
	if n := len(br.Users().Permissions()); n != 1000 {
		b.Fatalf("%d permission entries, want 1000", n)
	}
}
