//go:build !linux

package bench

import (
	"context"
	"time"
)

// run opens the storm's connections; off Linux, one goroutine and a
// blocking dial each.
func (st *storm) run(ctx context.Context, start time.Time) (func(), error) {
	return st.runDial(ctx, start)
}
