package mqtt_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tern-broker/tern/internal/testkit"
)

// TestMQTTRetainedMigratedFromThePreviousFile: a data directory holding
// the retained messages file of the previous version (testdata, written by
// that version's code) starts with those messages, as the store's records;
// the old file is gone, and the messages survive another restart.
func TestMQTTRetainedMigratedFromThePreviousFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	raw, err := os.ReadFile("testdata/mqtt-retained-v1.bin")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mqtt-retained.bin"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	s := testkit.Start(t, testkit.WithDataDir(dir))
	check := func(s *testkit.Server) {
		t.Helper()
		in := newInbox()
		sub := client3(t, s, "sub")
		done(t, sub.Subscribe("home/#", 1, in.handler))
		got := in.wait(t, 2)
		want := map[string]string{"home/door": "open", "home/kitchen/temp": "21.5"}
		for _, m := range got {
			if want[m.Topic()] != string(m.Payload()) || !m.Retained() {
				t.Errorf("retained %s: %q (retain flag %v)", m.Topic(), m.Payload(), m.Retained())
			}
		}
		if ts := topics(got); !slices.Equal(ts, []string{"home/door", "home/kitchen/temp"}) {
			t.Errorf("retained topics %v", ts)
		}
		sub.Disconnect(50)
	}
	check(s)
	if _, err := os.Stat(filepath.Join(dir, "mqtt-retained.bin")); !os.IsNotExist(err) {
		t.Fatalf("the migrated file is still there: %v", err)
	}
	s = s.Restart(t)
	check(s)
}

// TestMQTTRetainedSetAndClearSurviveRestarts: sets, replacements and clears
// are the store's records and recovered in order.
func TestMQTTRetainedSetAndClearSurviveRestarts(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, testkit.WithDataDir(t.TempDir()))
	pub := client3(t, s, "pub")
	done(t, pub.Publish("st/a", 1, true, "a1"))
	done(t, pub.Publish("st/b", 1, true, "b1"))
	done(t, pub.Publish("st/a", 1, true, "a2"))
	done(t, pub.Publish("st/b", 1, true, "")) // clears
	done(t, pub.Publish("st/c", 0, true, "c1"))
	done(t, pub.Publish("st/c", 1, true, "")) // clears
	done(t, pub.Publish("st/c", 1, true, "c2"))
	pub.Disconnect(50)
	s = s.Restart(t)
	in := newInbox()
	sub := client3(t, s, "sub")
	done(t, sub.Subscribe("st/#", 1, in.handler))
	// A marker published after the SUBACK arrives after every retained
	// message the subscription announced.
	pub = client3(t, s, "pub2")
	done(t, pub.Publish("st/zz", 1, false, "marker"))
	got := in.wait(t, 3)
	if got[len(got)-1].Topic() != "st/zz" {
		t.Fatalf("more retained messages than expected: %v", topics(got))
	}
	got = got[:len(got)-1]
	if ts := topics(got); !slices.Equal(ts, []string{"st/a", "st/c"}) || string(got[0].Payload()) != "a2" || string(got[1].Payload()) != "c2" {
		t.Fatalf("after restart: %v", ts)
	}
}
