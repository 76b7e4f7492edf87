package mgmt

import (
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/tern-broker/tern/internal/broker"
)

// A page of queues (GET /api/queues?page=N…, what the console and
// dashboards ask for) in name order costs the page, not the node: the
// queues are filtered and ordered by name as pointers, and only the page's
// queues are read (counts, rates, policy) and turned into JSON. With 10,000
// queues a page of 100 no longer builds 10,000 objects and sorts them by
// reflection (docs/performance.md). Sorting by another field (messages,
// rates…) needs every queue's value: each queue's object is built without
// its argument and policy maps (no sort reads them: a sort on those takes
// the general path), sorted by the key, and only the page is built whole.

// visibleQueue is a visible queue and its vhost's name.
type visibleQueue struct {
	vhost string
	q     *broker.Queue
}

// listQueues serves GET /api/queues and /api/queues/{vhost}.
func (s *apiServer) listQueues(w http.ResponseWriter, r *http.Request, vhost string) {
	lq, ok := parseListQuery(w, r)
	if !ok {
		return
	}
	if !lq.paged || !lightSort(lq.sort) {
		respondList(w, r, s.queues(r, vhost))
		return
	}
	refs := s.queueRefs(r, vhost)
	total := len(refs)
	if lq.name != "" {
		refs = slices.DeleteFunc(refs, func(x visibleQueue) bool { return !nameMatches(lq, x.q.Name()) })
	}
	s.rates.fresh(s.ticking)
	switch {
	case len(lq.sort) == 0: // the listing's order, vhost and name
		if lq.reverse {
			slices.Reverse(refs)
		}
	case len(lq.sort) == 1 && lq.sort[0] == "name":
		// By name alone; the vhost order stays among equal names, as the
		// general path's stable sort keeps it (reversed too).
		if lq.reverse {
			slices.SortStableFunc(refs, func(a, b visibleQueue) int { return -byName(a, b) })
		} else if !slices.IsSortedFunc(refs, byName) {
			slices.SortStableFunc(refs, byName)
		}
	default:
		refs = s.sortQueuesBy(refs, lq.sort, lq.reverse)
	}
	filtered := len(refs)
	pages := max(1, (filtered+lq.size-1)/lq.size)
	if lq.page > pages {
		badRequest(w, "page "+strconv.Itoa(lq.page)+" is beyond the last page ("+strconv.Itoa(pages)+")")
		return
	}
	lo := (lq.page - 1) * lq.size
	hi := min(lo+lq.size, filtered)
	items := make([]queueJSON, 0, hi-lo)
	where := s.placement()
	s.rates.withQueueRates(func(rate func(qkey) queueRateView) {
		for _, x := range refs[lo:hi] {
			items = append(items, s.queueJSON(x.vhost, x.q, rate(qkey{x.vhost, x.q.Name()}), where))
		}
	})
	apiJSON(w, http.StatusOK, page{FilteredCount: filtered, ItemCount: len(items), Items: selectColumns(items, lq.columns),
		Page: lq.page, PageCount: pages, PageSize: lq.size, TotalCount: total})
}

// queueRefs are the queues of vhost ("" for every vhost the user sees),
// ordered by vhost and name.
func (s *apiServer) queueRefs(r *http.Request, vhost string) []visibleQueue {
	vhosts := s.api.Broker.VHosts()
	slices.SortFunc(vhosts, func(a, b *broker.VHost) int { return strings.Compare(a.Name(), b.Name()) })
	s.qindex.prune(vhosts)
	var out []visibleQueue
	for _, v := range vhosts {
		if (vhost != "" && v.Name() != vhost) || !vhostVisible(r, v.Name()) {
			continue
		}
		qs := s.qindex.queues(v)
		out = slices.Grow(out, len(qs))
		for _, q := range qs {
			out = append(out, visibleQueue{v.Name(), q})
		}
	}
	return out
}

func byName(a, b visibleQueue) int { return strings.Compare(a.q.Name(), b.q.Name()) }

// lightSort says whether a sort's field is one of a queue's object built
// without its maps (not arguments, effective_policy_definition).
func lightSort(sort []string) bool {
	if len(sort) == 0 {
		return true
	}
	f, ok := reflect.TypeFor[queueJSON]().FieldByName(goField(sort[0]))
	return ok && f.Type.Kind() != reflect.Map
}

// goField is the Go name of queueJSON's field with JSON name name ("" if
// none).
func goField(name string) string {
	t := reflect.TypeFor[queueJSON]()
	if i, ok := jsonFields(t)[name]; ok {
		return t.FieldByIndex(i).Name
	}
	return ""
}

// sortQueuesBy orders refs by the field path of their queue objects, as
// the general path's sort does (stable; numbers before strings), reading
// each queue once without building its maps.
func (s *apiServer) sortQueuesBy(refs []visibleQueue, path []string, reverse bool) []visibleQueue {
	keys := make([]sortKey, len(refs))
	items := make([]queueJSON, len(refs)) // one allocation; each item read through a pointer into it
	s.rates.withQueueRates(func(rate func(qkey) queueRateView) {
		for i, x := range refs {
			items[i] = s.queueLight(x.vhost, x.q, rate(qkey{x.vhost, x.q.Name()}))
		}
	})
	for i := range items {
		keys[i] = keyOf(fieldByPath(reflect.ValueOf(&items[i]), path))
	}
	out := make([]visibleQueue, len(refs))
	for i, j := range sortOrder(keys, reverse) {
		out[i] = refs[j]
	}
	return out
}

// nameMatches is the name filter of a list query: a case-insensitive
// substring, or a regular expression with use_regex.
func nameMatches(lq listQuery, name string) bool {
	if lq.nameRE != nil {
		return lq.nameRE.MatchString(name)
	}
	return strings.Contains(strings.ToLower(name), lq.nameLowered)
}
