package mgmt_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/testkit"
)

// A page of queues (served without building every queue's object when
// the order is by name, and from keys when it is by another field) holds
// the same queues, in the same order, as the general listing sorted the
// same way and cut by hand, across vhosts, filters, reversal, and queues
// added and deleted between requests (the name index is rebuilt).
func TestQueuePagesMatchTheFullListing(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	guest(t, s, "PUT", "/api/vhosts/b-vhost", nil, http.StatusCreated)
	names := []string{"zeta", "Alpha", "alpha", "mid.1", "mid.2", "mid.10", "beta", "q-7", "q-8", "Q-9"}
	for i, n := range names {
		for _, v := range []string{"%2F", "b-vhost"} {
			guest(t, s, "PUT", "/api/queues/"+v+"/"+n, map[string]any{"durable": false}, http.StatusCreated)
			for range (i * 7) % 5 { // message counts to sort by
				guest(t, s, "POST", "/api/exchanges/"+v+"/amq.default/publish",
					map[string]any{"routing_key": n, "payload": "x", "payload_encoding": "string"}, http.StatusOK)
			}
		}
	}
	type item struct{ VHost, Name string }
	list := func(path string) []item {
		var out []item
		if err := json.Unmarshal(guest(t, s, "GET", path, nil, http.StatusOK), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	check := func() {
		t.Helper()
		for _, sort := range []string{"", "name", "vhost", "messages", "messages_ready", "message_stats.publish", "type", "arguments.x"} {
			for _, rev := range []string{"", "true"} {
				for _, filter := range []string{"", "mid", "ALPHA", "^q-[0-9]$"} {
					full := list("/api/queues?sort=" + sort + "&sort_reverse=" + rev)
					if filter != "" {
						re := regexp.MustCompile("(?i)" + regexp.QuoteMeta(filter))
						regex := strings.HasPrefix(filter, "^")
						if regex {
							re = regexp.MustCompile(filter)
						}
						full = slices.DeleteFunc(full, func(it item) bool { return !re.MatchString(it.Name) })
					}
					regex := ""
					if strings.HasPrefix(filter, "^") {
						regex = "&use_regex=true"
					}
					for _, size := range []int{3, 7} {
						for p := 1; p <= max(1, (len(full)+size-1)/size); p++ {
							path := fmt.Sprintf("/api/queues?page=%d&page_size=%d&sort=%s&sort_reverse=%s&name=%s%s", p, size, sort, rev, filter, regex)
							var pg struct {
								Items                     []item
								FilteredCount, TotalCount int `json:"-"`
								Filtered                  int `json:"filtered_count"`
								Total                     int `json:"total_count"`
							}
							if err := json.Unmarshal(guest(t, s, "GET", path, nil, http.StatusOK), &pg); err != nil {
								t.Fatal(err)
							}
							want := full[(p-1)*size : min(p*size, len(full))]
							if !slices.Equal(pg.Items, want) || pg.Filtered != len(full) || pg.Total != 2*len(names) {
								t.Fatalf("%s:\n got %v (filtered %d, total %d)\nwant %v (filtered %d)", path, pg.Items, pg.Filtered, pg.Total, want, len(full))
							}
						}
					}
				}
			}
		}
	}
	check()
	guest(t, s, "DELETE", "/api/queues/%2F/beta", nil, http.StatusNoContent)
	guest(t, s, "PUT", "/api/queues/%2F/aardvark", map[string]any{"durable": false}, http.StatusCreated)
	names = slices.DeleteFunc(names, func(n string) bool { return n == "beta" }) // same count: one out, one in
	names = append(names, "aardvark")
	check()
}
