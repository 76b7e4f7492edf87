package broker

import (
	"github.com/tern-broker/tern/internal/message"
)

// Paging in: a durable queue keeps the bodies of ready persistent messages
// past its memory share in the log (entry.msg == nil). They are read back
// when due, without the queue's lock, so a slow disk read never stalls the
// publishers and consumers of the queue:
//
//  1. dispatchLocked stops at a paged-out head and sets pageWanted;
//  2. whoever released the lock (unlockThen) claims the page-in if nobody
//     holds it (paging) and runs pageIn: it notes the next paged-out
//     entries under the lock, reads them without it, then installs the
//     bodies in the entries that are still there (found by seq) and
//     dispatches again, repeating while dispatch wants more;
//  3. basic.get reads its one head the same way (Get), and dead-lettering
//     a paged-out message reads it after the lock is released (deadLetter).
//
// Reads of the same entry racing each other are harmless: the first body
// installed wins and the other is dropped.

const (
	pageBatch      = 16      // entries read per page-in round
	pageBatchBytes = 1 << 20 // stop a round's batch past this many body bytes
	pageScan       = 4 * pageBatch
)

// pageRef names a paged-out entry to read.
type pageRef struct {
	level int
	seq   uint64
}

// unlockThen releases q.mu and then does what had to wait for it: the
// dead-letters, and a page-in dispatch asked for.
func (q *classicBackend) unlockThen(dead []deadLetter) {
	page := q.startPageInLocked()
	q.mu.Unlock()
	q.deadLetter(dead)
	if page {
		q.pageIn()
	}
}

// startPageInLocked claims the page-in when dispatch stopped at a
// paged-out head and no page-in is running.
func (q *classicBackend) startPageInLocked() bool {
	if !q.pageWanted || q.paging || q.deleted {
		return false
	}
	q.pageWanted, q.paging = false, true
	return true
}

// pageIn reads paged-out bodies due next, without the queue's lock, until
// dispatch no longer waits for one. The caller claimed it
// (startPageInLocked).
func (q *classicBackend) pageIn() {
	var refs [pageBatch]pageRef
	var msgs [pageBatch]*message.Message
	var errs [pageBatch]error
	for {
		q.mu.Lock()
		n := q.pagedHeadsLocked(refs[:0])
		q.mu.Unlock()
		for i := range n {
			msgs[i], errs[i] = q.log.Read(refs[i].seq)
		}
		q.mu.Lock()
		for i := range n {
			q.installLocked(refs[i], msgs[i], errs[i])
			msgs[i], errs[i] = nil, nil
		}
		q.paging = false
		var dead []deadLetter
		if !q.deleted {
			dead = q.dispatchLocked(q.nowNano(), nil)
			q.armExpiryLocked()
		}
		again := q.startPageInLocked()
		q.mu.Unlock()
		q.deadLetter(dead)
		if !again {
			return
		}
	}
}

// pagedHeadsLocked fills refs with the paged-out entries due next, in
// delivery order (highest priority first, FIFO within one), and returns
// how many.
func (q *classicBackend) pagedHeadsLocked(refs []pageRef) int {
	var bytes int64
	for lvl := len(q.levels) - 1; lvl >= 0; lvl-- {
		d := &q.levels[lvl]
		for i := 0; i < d.len() && i < pageScan; i++ {
			e := d.at(i)
			if e.msg != nil || e.unreadable {
				continue
			}
			refs = append(refs, pageRef{level: lvl, seq: e.seq})
			bytes += e.size
			if len(refs) == cap(refs) || bytes >= pageBatchBytes {
				return len(refs)
			}
		}
	}
	return len(refs)
}

// installLocked puts a body read from the log into its entry, if the entry
// is still ready and paged out; a failed read marks it unreadable, and
// dispatch or get then drops it.
func (q *classicBackend) installLocked(r pageRef, m *message.Message, err error) {
	if r.level >= len(q.levels) {
		return
	}
	e := q.levels[r.level].find(r.seq)
	if e == nil || e.msg != nil || e.unreadable {
		return // taken, dropped or installed meanwhile
	}
	if err != nil {
		e.unreadable = true
		q.readFailed(e.seq, err)
		return
	}
	e.msg = m
	q.memBytes += e.size
	q.vhost.broker.pagedOut()
	q.vhost.broker.bodyIn(e.size)
}
