package chaos

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestGenerateIsDeterministicAndSeedDependent(t *testing.T) {
	a, err := Generate(42, 1, "ci")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(42, 1, "ci")
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed made two schedules")
	}
	differ := false
	for seed := uint64(43); seed < 53 && !differ; seed++ {
		c, _ := Generate(seed, 1, "ci")
		differ = !reflect.DeepEqual(a.Faults, c.Faults)
	}
	if !differ {
		t.Fatal("ten other seeds all made seed 42's schedule")
	}
}

func TestCIProfileHasEachSingleNodeFaultOnceInOrder(t *testing.T) {
	for seed := uint64(0); seed < 50; seed++ {
		s, err := Generate(seed, 1, "ci")
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		var end int64
		for _, f := range s.Faults {
			seen[f.Kind]++
			if f.Node != 1 {
				t.Fatalf("seed %d: node %d", seed, f.Node)
			}
			if f.AtMS < end {
				t.Fatalf("seed %d: %s at %d ms overlaps the previous fault (ends %d ms)", seed, f.Kind, f.AtMS, end)
			}
			end = f.AtMS + f.DurationMS
		}
		if end > s.WorkloadMS {
			t.Fatalf("seed %d: last fault ends at %d ms, after the workload (%d ms)", seed, end, s.WorkloadMS)
		}
		for _, k := range singleNodeFaults {
			if seen[k] != 1 {
				t.Fatalf("seed %d: %s %d times", seed, k, seen[k])
			}
		}
	}
}

func TestMultiNodeSchedulesHaveNetworkFaults(t *testing.T) {
	for _, n := range []int{3, 5} {
		s, err := Generate(7, n, "ci")
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]bool{}
		for _, f := range s.Faults {
			kinds[f.Kind] = true
			if f.Kind == FaultPartition || f.Kind == FaultLoss {
				if _, err := NFTRules(f, n); err != nil {
					t.Fatalf("%d nodes: %+v: %v", n, f, err)
				}
			}
		}
		if !kinds[FaultPartition] || !kinds[FaultLoss] || !kinds[FaultKill] || !kinds[FaultKillLeader] || !kinds[FaultKillAll] || !kinds[FaultPause] ||
			!kinds[FaultBandwidth] || !kinds[FaultDelay] || !kinds[FaultClockSkew] {
			t.Fatalf("%d nodes: kinds %v", n, kinds)
		}
		// A cluster's messages are in the Raft WAL: no torn tail, no full disk.
		if kinds[FaultTornTail] || kinds[FaultDiskFull] {
			t.Fatalf("%d nodes: kinds %v", n, kinds)
		}
	}
	for seed := uint64(0); seed < 30; seed++ {
		if _, err := Generate(seed, 5, "long"); err != nil {
			t.Fatalf("seed %d long 5 nodes: %v", seed, err)
		}
	}
}

func TestKillLeaderAndKillAllNeedACluster(t *testing.T) {
	s, err := Generate(3, 1, "ci")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{FaultKillLeader, FaultKillAll} {
		s.Faults[0].Kind = k
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "needs 3 or 5 nodes") {
			t.Fatalf("%s on one node: %v", k, err)
		}
	}
}

func TestScheduleSaveLoadAndBadFiles(t *testing.T) {
	s, _ := Generate(9, 1, "long")
	path := filepath.Join(t.TempDir(), "schedule.json")
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := LoadSchedule(path)
	if err != nil || !reflect.DeepEqual(s, back) {
		t.Fatalf("load: %v, equal %v", err, reflect.DeepEqual(s, back))
	}
	good, _ := os.ReadFile(path)
	for name, c := range map[string]struct{ from, to string }{
		"not json":      {`{`, `[`},
		"unknown fault": {`"kind": "kill"`, `"kind": "meteor"`},
		"unknown field": {`"seed":`, `"sneed": 1, "seed":`},
		"bad profile":   {`"profile": "long"`, `"profile": "forever"`},
		"bad nodes":     {`"nodes": 1`, `"nodes": 2`},
		"bad version":   {`"version": 1`, `"version": 2`},
	} {
		bad := strings.Replace(string(good), c.from, c.to, 1)
		if bad == string(good) {
			t.Fatalf("%s: nothing replaced", name)
		}
		if _, err := ParseSchedule([]byte(bad)); !errors.Is(err, ErrSchedule) {
			t.Errorf("%s: error %v, want ErrSchedule", name, err)
		}
	}
	if _, err := LoadSchedule(filepath.Join(t.TempDir(), "missing.json")); !errors.Is(err, ErrSchedule) {
		t.Errorf("missing file: %v", err)
	}
	one := Schedule{Version: 1, Nodes: 1, Profile: "ci", WorkloadMS: 1000, Faults: []Fault{{Kind: FaultPartition, Node: 1, Partition: PartitionIsolate, DurationMS: 10}}}
	if err := one.Validate(); err == nil || !strings.Contains(err.Error(), "needs 3 or 5 nodes") {
		t.Errorf("a partition on one node: %v", err)
	}
}

func TestUnknownProfileAndNodes(t *testing.T) {
	if _, err := Generate(1, 1, "soak"); !errors.Is(err, ErrSchedule) {
		t.Errorf("profile soak: %v", err)
	}
	if _, err := Generate(1, 4, "ci"); !errors.Is(err, ErrSchedule) {
		t.Errorf("4 nodes: %v", err)
	}
}

// TestOneNodeCISchedulesDidNotMove pins the one-node ci generator: the CI
// seeds (ciSeedsOneNode in cmd/tern) must keep the schedules that found
// their bugs, so new fault kinds join the cluster and long lists only.
func TestOneNodeCISchedulesDidNotMove(t *testing.T) {
	s, err := Generate(2, 1, "ci")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range s.Faults {
		got = append(got, fmt.Sprintf("%s@%d+%d", f.Kind, f.AtMS, f.DurationMS))
	}
	want := "pause@6932+1623 kill@11001+1795 torn-tail@19928+780 disk-full@26895+2260"
	if strings.Join(got, " ") != want {
		t.Fatalf("seed 2's one-node ci schedule is now %q, was %q", strings.Join(got, " "), want)
	}
}

func TestNewFaultKindsValidate(t *testing.T) {
	base := Schedule{Version: 1, Nodes: 3, Profile: "ci", WorkloadMS: 10_000}
	cases := []struct {
		f  Fault
		ok bool
	}{
		{Fault{Kind: FaultBandwidth, Node: 1, Peer: 2, RateKbit: 64, DurationMS: 10}, true},
		{Fault{Kind: FaultBandwidth, Node: 1, Peer: 1, RateKbit: 64, DurationMS: 10}, false},
		{Fault{Kind: FaultBandwidth, Node: 1, Peer: 2, DurationMS: 10}, false},
		{Fault{Kind: FaultDelay, Node: 2, Peer: 3, DelayMS: 100, DurationMS: 10}, true},
		{Fault{Kind: FaultDelay, Node: 2, Peer: 3, DurationMS: 10}, false},
		{Fault{Kind: FaultClockSkew, Node: 3, SkewMS: -5000, DurationMS: 10}, true},
		{Fault{Kind: FaultClockSkew, Node: 3, DurationMS: 10}, false},
	}
	for _, c := range cases {
		s := base
		s.Faults = []Fault{c.f}
		if err := s.Validate(); (err == nil) != c.ok {
			t.Errorf("%+v: %v, want ok %v", c.f, err, c.ok)
		}
	}
	one := Schedule{Version: 1, Nodes: 1, Profile: "long", WorkloadMS: 10_000}
	one.Faults = []Fault{{Kind: FaultDelay, Node: 1, Peer: 2, DelayMS: 5, DurationMS: 10}}
	if err := one.Validate(); err == nil || !strings.Contains(err.Error(), "needs 3 or 5 nodes") {
		t.Errorf("delay on one node: %v", err)
	}
	one.Faults = []Fault{{Kind: FaultClockSkew, Node: 1, SkewMS: 5, DurationMS: 10}}
	if err := one.Validate(); err != nil {
		t.Errorf("clock skew on one node: %v", err)
	}
}

func TestHookFaultsSkippedWithoutTheChaosBuild(t *testing.T) {
	s := Schedule{Version: 1, Nodes: 3, Profile: "ci", WorkloadMS: 10_000, Faults: []Fault{
		{Kind: FaultDelay, Node: 1, Peer: 2, DelayMS: 5, DurationMS: 10},
		{Kind: FaultClockSkew, Node: 1, SkewMS: 5, DurationMS: 10},
		{Kind: FaultKill, Node: 1, DurationMS: 10},
	}}
	got := skipReasons(s, false)
	if len(got) != 2 || !strings.Contains(got[FaultDelay], "-tags chaos") || !strings.Contains(got[FaultClockSkew], "-tags chaos") {
		t.Fatalf("without hooks: %v", got)
	}
	if got := skipReasons(s, true); len(got) != 0 {
		t.Fatalf("with hooks: %v", got)
	}
}
