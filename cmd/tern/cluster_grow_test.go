package main

import "testing"

func TestGrowRequest(t *testing.T) {
	for _, tc := range []struct {
		cmd       string
		args      []string
		all, even bool
		want      string // body, "" for an error
	}{
		{"grow", []string{"n4"}, false, false, `{"node":"n4","queue_pattern":"q","strategy":"","vhost_pattern":"v"}`},
		{"grow", []string{"n4", "even"}, false, false, `{"node":"n4","queue_pattern":"q","strategy":"even","vhost_pattern":"v"}`},
		{"grow", []string{"n4"}, true, false, `{"node":"n4","queue_pattern":"q","strategy":"all","vhost_pattern":"v"}`},
		{"grow", []string{"n4", "all"}, false, true, ""},
		{"grow", []string{"n4"}, true, true, ""},
		{"grow", []string{"n4", "most"}, false, false, ""},
		{"shrink", []string{"n4"}, false, false, `{"node":"n4","queue_pattern":"q","strategy":"","vhost_pattern":"v"}`},
		{"shrink", []string{"n4"}, false, true, ""},
		{"shrink", []string{"n4", "all"}, false, false, ""},
	} {
		method, path, body, err := growRequest(tc.cmd, tc.args, "v", "q", tc.all, tc.even)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%s %v all=%v even=%v: no error", tc.cmd, tc.args, tc.all, tc.even)
			}
			continue
		}
		if err != nil || method != "POST" || path != "/api/cluster/"+tc.cmd || body != tc.want {
			t.Errorf("%s %v: %s %s %s %v", tc.cmd, tc.args, method, path, body, err)
		}
	}
}
