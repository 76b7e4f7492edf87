package mgmt

import (
	"cmp"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// List endpoints take RabbitMQ's query parameters:
//
//	sort=field (dotted for nested: message_stats.publish_details.rate),
//	sort_reverse=true, columns=name,messages (the fields to keep),
//	page=N, page_size=M (default 100, at most 500), name=text (a
//	case-insensitive substring of the name, a regular expression with
//	use_regex=true).
//
// Without page the answer is the bare array, sorted (name filtering, as
// in RabbitMQ, needs page); with it, RabbitMQ's paged object.
type page struct {
	FilteredCount int `json:"filtered_count"`
	ItemCount     int `json:"item_count"`
	Items         any `json:"items"`
	Page          int `json:"page"`
	PageCount     int `json:"page_count"`
	PageSize      int `json:"page_size"`
	TotalCount    int `json:"total_count"`
}

const (
	defaultPageSize = 100
	maxPageSize     = 500
)

// listQuery is a parsed set of list parameters.
type listQuery struct {
	sort        []string
	reverse     bool
	columns     [][]string
	paged       bool
	page, size  int
	name        string
	nameRE      *regexp.Regexp
	nameLowered string
}

// parseListQuery reads the parameters; a bad one is answered 400 and ok is
// false.
func parseListQuery(w http.ResponseWriter, r *http.Request) (q listQuery, ok bool) {
	v := r.URL.Query()
	if s := v.Get("sort"); s != "" {
		q.sort = strings.Split(s, ".")
	}
	q.reverse = v.Get("sort_reverse") == "true"
	if c := v.Get("columns"); c != "" {
		for _, col := range strings.Split(c, ",") {
			if col = strings.TrimSpace(col); col != "" {
				q.columns = append(q.columns, strings.Split(col, "."))
			}
		}
	}
	if p := v.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			badRequest(w, "page must be a positive integer, not '"+p+"'")
			return q, false
		}
		q.paged, q.page, q.size = true, n, defaultPageSize
		if s := v.Get("page_size"); s != "" {
			m, err := strconv.Atoi(s)
			if err != nil || m < 1 || m > maxPageSize {
				badRequest(w, "page_size must be an integer from 1 to 500, not '"+s+"'")
				return q, false
			}
			q.size = m
		}
		q.name = v.Get("name")
		if q.name != "" && v.Get("use_regex") == "true" {
			re, err := regexp.Compile(q.name)
			if err != nil {
				badRequest(w, "name is not a valid regular expression: "+err.Error())
				return q, false
			}
			q.nameRE = re
		}
		q.nameLowered = strings.ToLower(q.name)
	}
	return q, true
}

// respondList answers a list endpoint: items filtered, sorted, paged and
// cut to the requested columns.
func respondList[T any](w http.ResponseWriter, r *http.Request, items []T) {
	q, ok := parseListQuery(w, r)
	if !ok {
		return
	}
	if items == nil {
		items = []T{}
	}
	total := len(items)
	if q.paged && q.name != "" {
		items = slices.DeleteFunc(items, func(it T) bool {
			return !nameMatches(q, fieldString(reflect.ValueOf(it), []string{"name"}))
		})
	}
	if q.sort != nil {
		sortItems(items, q.sort, q.reverse)
	} else if q.reverse {
		slices.Reverse(items)
	}
	if !q.paged {
		if len(q.columns) == 0 {
			apiJSONList(w, items)
			return
		}
		apiJSON(w, http.StatusOK, selectColumns(items, q.columns))
		return
	}
	filtered := len(items)
	pages := max(1, (filtered+q.size-1)/q.size)
	if q.page > pages {
		badRequest(w, "page "+strconv.Itoa(q.page)+" is beyond the last page ("+strconv.Itoa(pages)+")")
		return
	}
	lo := (q.page - 1) * q.size
	hi := min(lo+q.size, filtered)
	pageItems := items[lo:hi]
	apiJSON(w, http.StatusOK, page{FilteredCount: filtered, ItemCount: len(pageItems), Items: selectColumns(pageItems, q.columns),
		Page: q.page, PageCount: pages, PageSize: q.size, TotalCount: total})
}

// sortKey is a field's value for ordering: numbers before strings, as
// RabbitMQ's sort compares numbers numerically and text as text.
type sortKey struct {
	isNum bool
	num   float64
	str   string
}

func sortItems[T any](items []T, path []string, reverse bool) {
	keys := make([]sortKey, len(items))
	for i := range items {
		keys[i] = keyOf(fieldByPath(reflect.ValueOf(items[i]), path))
	}
	idx := sortOrder(keys, reverse)
	sorted := make([]T, len(items))
	for i, j := range idx {
		sorted[i] = items[j]
	}
	copy(items, sorted)
}

// sortOrder is the stable order of keys (numbers before strings), as
// indexes into keys.
func sortOrder(keys []sortKey, reverse bool) []int {
	idx := make([]int, len(keys))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		ka, kb := keys[a], keys[b]
		var c int
		switch {
		case ka.isNum && kb.isNum:
			c = cmp.Compare(ka.num, kb.num)
		case ka.isNum != kb.isNum:
			c = map[bool]int{true: -1, false: 1}[ka.isNum]
		default:
			c = strings.Compare(ka.str, kb.str)
		}
		if reverse {
			c = -c
		}
		return c
	})
	return idx
}

func keyOf(v reflect.Value) sortKey {
	if !v.IsValid() {
		return sortKey{}
	}
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return sortKey{}
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return sortKey{isNum: true, num: float64(v.Int())}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return sortKey{isNum: true, num: float64(v.Uint())}
	case reflect.Float32, reflect.Float64:
		return sortKey{isNum: true, num: v.Float()}
	case reflect.Bool:
		if v.Bool() {
			return sortKey{isNum: true, num: 1}
		}
		return sortKey{isNum: true}
	case reflect.String:
		return sortKey{str: v.String()}
	}
	return sortKey{}
}

func fieldString(v reflect.Value, path []string) string {
	f := fieldByPath(v, path)
	for f.IsValid() && (f.Kind() == reflect.Interface || f.Kind() == reflect.Pointer) && !f.IsNil() {
		f = f.Elem()
	}
	if f.IsValid() && f.Kind() == reflect.String {
		return f.String()
	}
	return ""
}

// fieldByPath follows JSON names through structs and maps.
func fieldByPath(v reflect.Value, path []string) reflect.Value {
	for _, name := range path {
		for v.IsValid() && (v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer) {
			if v.IsNil() {
				return reflect.Value{}
			}
			v = v.Elem()
		}
		switch v.Kind() {
		case reflect.Struct:
			i, ok := jsonFields(v.Type())[name]
			if !ok {
				return reflect.Value{}
			}
			v = v.FieldByIndex(i)
		case reflect.Map:
			if v.Type().Key().Kind() != reflect.String {
				return reflect.Value{}
			}
			v = v.MapIndex(reflect.ValueOf(name).Convert(v.Type().Key()))
		default:
			return reflect.Value{}
		}
	}
	return v
}

var fieldCache sync.Map // reflect.Type → map[string][]int

// jsonFields maps a struct type's JSON names (embedded structs' too) to
// their field indexes.
func jsonFields(t reflect.Type) map[string][]int {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string][]int)
	}
	m := map[string][]int{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := m[name]; !dup {
			m[name] = f.Index
		}
	}
	fieldCache.Store(t, m)
	return m
}

// selectColumns keeps the requested fields of each item (RabbitMQ's
// columns parameter: nested fields by dotted path, kept nested).
func selectColumns[T any](items []T, cols [][]string) any {
	if len(cols) == 0 {
		return items
	}
	out := make([]map[string]any, len(items))
	for i, it := range items {
		m := map[string]any{}
		for _, c := range cols {
			f := fieldByPath(reflect.ValueOf(it), c)
			if !f.IsValid() {
				continue
			}
			dst := m
			for _, p := range c[:len(c)-1] {
				next, ok := dst[p].(map[string]any)
				if !ok {
					next = map[string]any{}
					dst[p] = next
				}
				dst = next
			}
			dst[c[len(c)-1]] = f.Interface()
		}
		out[i] = m
	}
	return out
}
