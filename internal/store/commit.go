package store

import (
	"fmt"
	"sync"
	"time"

	"github.com/tern-broker/tern/internal/message"
	"github.com/tern-broker/tern/internal/vfs"
)

// committer is the node-wide group commit: every log written since the last
// batch is flushed and fsynced once, then every completion in the batch is
// told. While one batch syncs, new appends gather in the next, so the fsync
// rate adapts to the disk and one fsync covers many messages.
//
// A completion travels with its record: in its log's buffer, then in the
// log's written list once the write succeeded, then in the batch that
// fsyncs it. A failed write or fsync hands it, with the error, to the log's
// settled list; nothing else can decide it, so a record whose write or
// fsync failed is never confirmed, however much is written meanwhile.
type committer struct {
	st *Store

	mu      sync.Mutex
	dirty   map[*QueueLog]bool // log → holds messages awaiting an fsync
	wake    chan struct{}
	stop    chan struct{}
	stopped chan struct{}

	lastSync time.Time
	unsynced map[*QueueLog]vfs.File // interval mode: flushed, not yet fsynced
	decided  []completion           // the batch's completions, reused
}

type completion struct {
	c     message.Completion
	token uint64
	err   error // set when a failure decided it
}

func newCommitter(st *Store) *committer {
	c := &committer{st: st, dirty: map[*QueueLog]bool{}, wake: make(chan struct{}, 1),
		stop: make(chan struct{}), stopped: make(chan struct{}), unsynced: map[*QueueLog]vfs.File{}}
	go c.run()
	return c
}

// add marks l written in the open batch. Called with l.mu held.
func (c *committer) add(l *QueueLog, needsSync bool) {
	c.mu.Lock()
	c.dirty[l] = c.dirty[l] || needsSync
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
	for {
		select {
		case <-c.wake:
		case <-tick:
		case <-c.stop:
			c.batch(&spare, true)
			return
		}
		c.batch(&spare, false)
	}
}

type syncJob struct {
	log *QueueLog
	c   commit
	err error
}

// batch runs one group commit.
func (c *committer) batch(spare *map[*QueueLog]bool, final bool) {
	c.mu.Lock()
	logs := c.dirty
	c.dirty = *spare
	c.mu.Unlock()

	always := c.st.opts.Sync == SyncAlways
	var jobs, written []syncJob
	decided := c.decided[:0]
	for l, needsSync := range logs {
		cm := l.commitFile()
		decided = append(decided, cm.settled...)
		if cm.err != nil {
			for _, cp := range cm.comps {
				cp.err = cm.err
				decided = append(decided, cp)
			}
			continue
		}
		if cm.file == nil {
			decided = append(decided, cm.comps...) // nothing left to write them to
			continue
		}
		switch {
		case always && (needsSync || len(cm.comps) > 0):
			jobs = append(jobs, syncJob{log: l, c: cm})
		case !always:
			c.unsynced[l] = cm.file
			written = append(written, syncJob{log: l, c: cm})
		}
	}
	var intervalJobs []syncJob
	if !always && (final || time.Since(c.lastSync) >= c.st.opts.SyncInterval) {
		for l, f := range c.unsynced {
			intervalJobs = append(intervalJobs, syncJob{log: l, c: commit{file: f}})
			delete(c.unsynced, l)
		}
		c.lastSync = time.Now()
	}
	c.syncAll(jobs)
	c.syncAll(intervalJobs)
	for _, j := range intervalJobs {
		if j.err != nil {
			j.log.fail(j.c.file, j.err) // interval mode confirmed the data already
		}
	}
	for i := range jobs {
		j := &jobs[i]
		if j.err != nil {
			decided = append(decided, j.log.syncFailed(&j.c, j.err)...)
			continue
		}
		if err := j.log.synced(&j.c); err != nil {
			for k := range j.c.comps {
				j.c.comps[k].err = err
			}
			decided = append(decided, j.c.comps...)
			continue
		}
		j.log.advanceDurable(j.c.upTo)
		decided = append(decided, j.c.comps...)
	}
	for _, j := range written {
		j.log.advanceDurable(j.c.upTo)
		decided = append(decided, j.c.comps...)
	}
	n := 0
	for _, cp := range decided {
		if cp.err == nil {
			n++
		}
		cp.c.Durable(cp.token, cp.err)
	}
	// Completions that answer per batch (AMQP confirms: one multiple
	// basic.ack for the run) answer now; a repeat for the same completion is
	// harmless, so only neighbours are deduplicated.
	for i, cp := range decided {
		if b, ok := cp.c.(message.BatchCompletion); ok && (i == 0 || decided[i-1].c != cp.c) {
			b.DurableBatchEnd()
		}
	}
	c.st.stats.committed.Add(uint64(n))
	clear(decided)
	c.decided = decided[:0]
	for _, j := range jobs {
		j.log.recycle(j.c.comps)
	}
	for _, j := range written {
		j.log.recycle(j.c.comps)
	}
	c.st.afterBatch()
	clear(logs)
	*spare = logs
}

// syncAll fsyncs every job's file at once: the device queues them and the
// batch costs about one fsync's latency, however many queues.
func (c *committer) syncAll(jobs []syncJob) {
	if len(jobs) == 0 {
		return
	}
	start := time.Now()
	syncOne := func(j *syncJob) {
		if err := j.c.file.Sync(); err != nil {
			j.err = fmt.Errorf("store: fsync: %w", err)
		}
	}
	if len(jobs) == 1 {
		syncOne(&jobs[0]) // the common case: no goroutine to start
	} else {
		var wg sync.WaitGroup
		for i := range jobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				syncOne(&jobs[i])
			}()
		}
		wg.Wait()
	}
	c.st.stats.fsyncs.Add(uint64(len(jobs)))
	c.st.stats.batches.Add(1)
	c.st.stats.fsyncNanos.Add(uint64(time.Since(start)))
}

func (c *committer) close() {
	close(c.stop)
	<-c.stopped
}
