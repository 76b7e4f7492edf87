package store

import (
	"fmt"
	"sync"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/vfs"
)

// committer is the node-wide group commit: every log written since the last
// batch is flushed and fsynced once, then every completion in the batch is
// told. While one batch syncs, new appends gather in the next, so the fsync
// rate adapts to the disk and one fsync covers many messages.
type committer struct {
	st *Store

	mu      sync.Mutex
	dirty   map[*QueueLog]bool // log → holds messages awaiting an fsync
	comps   []completion
	wake    chan struct{}
	stop    chan struct{}
	stopped chan struct{}

	lastSync time.Time
	unsynced map[*QueueLog]vfs.File // interval mode: flushed, not yet fsynced
}

type completion struct {
	c     broker.Completion
	token uint64
	log   *QueueLog
	gen   uint64 // the log's write generation holding the record
}

func newCommitter(st *Store) *committer {
	c := &committer{st: st, dirty: map[*QueueLog]bool{}, wake: make(chan struct{}, 1),
		stop: make(chan struct{}), stopped: make(chan struct{}), unsynced: map[*QueueLog]vfs.File{}}
	go c.run()
	return c
}

// add registers a write to l in the open batch. Called with l.mu held.
func (c *committer) add(l *QueueLog, done broker.Completion, token, gen uint64, needsSync bool) {
	c.mu.Lock()
	c.dirty[l] = c.dirty[l] || needsSync
	if done != nil {
		c.comps = append(c.comps, completion{c: done, token: token, log: l, gen: gen})
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *committer) run() {
	defer close(c.stopped)
	var tick <-chan time.Time
	if c.st.opts.Sync == SyncInterval {
		t := time.NewTicker(c.st.opts.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	spare := map[*QueueLog]bool{}
	var spareComps []completion
	for {
		select {
		case <-c.wake:
		case <-tick:
		case <-c.stop:
			c.batch(&spare, &spareComps, true)
			return
		}
		c.batch(&spare, &spareComps, false)
	}
}

// batch runs one group commit.
func (c *committer) batch(spare *map[*QueueLog]bool, spareComps *[]completion, final bool) {
	c.mu.Lock()
	logs, comps := c.dirty, c.comps
	c.dirty, c.comps = *spare, (*spareComps)[:0]
	c.mu.Unlock()

	errs := map[*QueueLog]error{}
	type syncJob struct {
		log  *QueueLog
		file vfs.File
		upTo uint64
	}
	var jobs []syncJob
	always := c.st.opts.Sync == SyncAlways
	var written []syncJob // interval mode: durable enough once written
	for l, needsSync := range logs {
		f, upTo, ok, err := l.commitFile()
		if err != nil {
			errs[l] = err
			continue
		}
		if !ok {
			continue
		}
		if always && needsSync {
			jobs = append(jobs, syncJob{l, f, upTo})
		} else if !always {
			c.unsynced[l] = f
			written = append(written, syncJob{l, f, upTo})
		}
	}
	if !always && (final || time.Since(c.lastSync) >= c.st.opts.SyncInterval) {
		for l, f := range c.unsynced {
			jobs = append(jobs, syncJob{l, f, 0})
			delete(c.unsynced, l)
		}
		c.lastSync = time.Now()
	}
	// fsync every file of the batch at once: the device queues them and
	// the batch costs about one fsync's latency, however many queues.
	var wg sync.WaitGroup
	var errMu sync.Mutex
	start := time.Now()
	syncOne := func(j syncJob) {
		if err := j.file.Sync(); err != nil {
			err = fmt.Errorf("store: fsync: %w", err)
			j.log.fail(err)
			errMu.Lock()
			errs[j.log] = err
			errMu.Unlock()
		}
	}
	if len(jobs) == 1 {
		syncOne(jobs[0]) // the common case: no goroutine to start
	} else {
		for _, j := range jobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				syncOne(j)
			}()
		}
		wg.Wait()
	}
	if len(jobs) > 0 {
		c.st.stats.fsyncs.Add(uint64(len(jobs)))
		c.st.stats.batches.Add(1)
		c.st.stats.fsyncNanos.Add(uint64(time.Since(start)))
	}
	for _, j := range append(jobs, written...) {
		if errs[j.log] == nil && j.upTo > 0 {
			j.log.advanceDurable(j.upTo)
		}
	}
	c.st.stats.committed.Add(uint64(len(comps)))
	for _, cp := range comps {
		err := errs[cp.log]
		if err == nil {
			// The batch's flush of this log may have succeeded after an
			// earlier flush (a read, a segment roll) failed this record.
			err = cp.log.genErr(cp.gen)
		}
		cp.c.Durable(cp.token, err)
	}
	// Completions that answer per batch (AMQP confirms) answer now; a repeat
	// for the same completion is harmless, so only neighbours are deduplicated.
	for i, cp := range comps {
		if b, ok := cp.c.(broker.BatchCompletion); ok && (i == 0 || comps[i-1].c != cp.c) {
			b.DurableBatchEnd()
		}
	}
	clear(comps)
	clear(logs)
	*spare, *spareComps = logs, comps
}

func (c *committer) close() {
	close(c.stop)
	<-c.stopped
}
