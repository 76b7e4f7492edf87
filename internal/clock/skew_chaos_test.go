//go:build chaos

package clock

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestChaosSkewMovesTheDefaultClock: with -tags chaos, the clock Or gives
// for nil reads the offset file; without the file it is the system time.
func TestChaosSkewMovesTheDefaultClock(t *testing.T) {
	path := filepath.Join(t.TempDir(), skewFile)
	t.Cleanup(func() { skewNS.Store(0) })
	c := Or(nil)
	if _, ok := c.(skewed); !ok {
		t.Fatalf("Or(nil) is %T, want the skewable clock", c)
	}
	loadSkew(path) // no file: no offset
	if d := time.Until(c.Now()); d > time.Second || d < -time.Second {
		t.Fatalf("no file, offset %v", d)
	}
	for _, ms := range []int64{30_000, -45_000} {
		if err := os.WriteFile(path, []byte(" "+strconv.FormatInt(ms, 10)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		loadSkew(path)
		want := time.Duration(ms) * time.Millisecond
		if d := time.Until(c.Now()); d < want-time.Second || d > want+time.Second {
			t.Fatalf("offset file %d ms: clock is %v off", ms, d)
		}
	}
	if err := os.WriteFile(path, []byte("soon"), 0o644); err != nil {
		t.Fatal(err)
	}
	loadSkew(path) // a bad file keeps the last offset
	if d := time.Until(c.Now()); d > -44*time.Second {
		t.Fatalf("a bad file changed the offset: %v", d)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	loadSkew(path) // removed: back to none
	if d := time.Until(c.Now()); d > time.Second || d < -time.Second {
		t.Fatalf("removed file, offset %v", d)
	}
}
