package mgmt

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/tern-broker/tern/internal/broker"
)

// GET /api/definitions exports, POST imports, in RabbitMQ's format
// (rabbit_version, vhosts, queues, exchanges, bindings, users,
// permissions, policies…), so a RabbitMQ export imports into Tern and
// the other way round. This file owns vhosts, queues, exchanges and
// bindings; other packages own the rest through DefinitionsSection
// (users and permissions, policies).
//
// An import is all or nothing: every part is checked first — types,
// references (a binding's exchange and queue, an object's vhost, in the
// node or in the file), equivalence with what exists, each section's own
// checks — and nothing is applied unless all pass. Applying then declares
// through the broker as a client would; only a storage failure while
// applying can leave an import half done (reported as a 500).

// DefinitionsSection is a part of the definitions document owned by
// another package.
type DefinitionsSection struct {
	// Keys are the document's top-level keys the section owns, e.g.
	// "users", "permissions", "topic_permissions".
	Keys []string
	// Export returns the section's values by key (each JSON-encodable;
	// an empty list as an empty slice).
	Export func() (map[string]any, error)
	// Prepare checks the section's part of an import — raw holds the
	// document's values for Keys, absent keys missing, and under
	// "vhosts" the document's vhosts — and returns the
	// function that applies it. It must change nothing; an error is the
	// client's (400) and aborts the whole import.
	Prepare func(raw map[string]json.RawMessage) (apply func() error, err error)
	// PrepareWarn, when set, is used instead of Prepare: it also returns
	// warnings — what the import will do that the person running it must
	// know (a user imported unable to log in) — which the answer lists.
	PrepareWarn func(raw map[string]json.RawMessage) (apply func() error, warnings []string, err error)
}

type defVHost struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Tags        []string       `json:"tags"`
	Metadata    map[string]any `json:"metadata,omitempty"`
}

type defQueue struct {
	Name       string         `json:"name"`
	VHost      string         `json:"vhost"`
	Durable    bool           `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
	Arguments  map[string]any `json:"arguments"`
}

type defExchange struct {
	Name       string         `json:"name"`
	VHost      string         `json:"vhost"`
	Type       string         `json:"type"`
	Durable    bool           `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
	Internal   bool           `json:"internal"`
	Arguments  map[string]any `json:"arguments"`
}

type defBinding struct {
	Source          string         `json:"source"`
	VHost           string         `json:"vhost"`
	Destination     string         `json:"destination"`
	DestinationType string         `json:"destination_type"`
	RoutingKey      string         `json:"routing_key"`
	Arguments       map[string]any `json:"arguments"`
}

// ignoredKeys are read and not applied: metadata of the exporting node and
// its cluster id (global_parameters).
var ignoredKeys = []string{"rabbit_version", "rabbitmq_version", "product_name", "product_version", "global_parameters", "explanation"}

func (s *apiServer) routeDefinitions(rt *router) {
	rt.handle(http.MethodGet, "/api/definitions", func(w http.ResponseWriter, r *http.Request, _ params) {
		if !requireAdmin(w, r) {
			return
		}
		s.exportDefinitions(w, r, "")
	})
	rt.handle(http.MethodGet, "/api/definitions/{vhost}", func(w http.ResponseWriter, r *http.Request, p params) {
		if !requireAdmin(w, r) || s.vhost(w, r, p["vhost"]) == nil {
			return
		}
		s.exportDefinitions(w, r, p["vhost"])
	})
	rt.handle(http.MethodPost, "/api/definitions", func(w http.ResponseWriter, r *http.Request, _ params) {
		s.importDefinitions(w, r, "")
	})
	rt.handle(http.MethodPost, "/api/definitions/{vhost}", func(w http.ResponseWriter, r *http.Request, p params) {
		if s.vhost(w, r, p["vhost"]) == nil {
			return
		}
		s.importDefinitions(w, r, p["vhost"])
	})
}

// exportDefinitions writes the durable objects (of one vhost, when vhost
// is set: then without vhosts and the sections, as RabbitMQ's per-vhost
// export has no users).
func (s *apiServer) exportDefinitions(w http.ResponseWriter, r *http.Request, vhost string) {
	d := s.api.Broker.Definitions()
	doc := map[string]any{"rabbit_version": rabbitVersion, "rabbitmq_version": rabbitVersion,
		"product_name": "Tern", "product_version": s.api.Node.Version}
	queues := []defQueue{}
	for _, q := range d.Queues {
		if (vhost == "" || q.VHost == vhost) && !q.Internal {
			queues = append(queues, defQueue{Name: q.Name, VHost: q.VHost, Durable: q.Durable, AutoDelete: q.AutoDelete, Arguments: jsonArgs(q.Args)})
		}
	}
	exchanges := []defExchange{}
	for _, x := range d.Exchanges {
		if vhost == "" || x.VHost == vhost {
			exchanges = append(exchanges, defExchange{Name: x.Name, VHost: x.VHost, Type: x.Type, Durable: x.Durable,
				AutoDelete: x.AutoDelete, Internal: x.Internal, Arguments: jsonArgs(x.Args)})
		}
	}
	bindings := []defBinding{}
	for _, b := range d.Bindings {
		if vhost == "" || b.VHost == vhost {
			dt := "queue"
			if b.DestIsExchange {
				dt = "exchange"
			}
			bindings = append(bindings, defBinding{Source: b.Source, VHost: b.VHost, Destination: b.Destination, DestinationType: dt,
				RoutingKey: b.Key, Arguments: jsonArgs(b.Args)})
		}
	}
	sort.Slice(queues, func(i, j int) bool {
		return queues[i].VHost+"\x00"+queues[i].Name < queues[j].VHost+"\x00"+queues[j].Name
	})
	sort.Slice(exchanges, func(i, j int) bool {
		return exchanges[i].VHost+"\x00"+exchanges[i].Name < exchanges[j].VHost+"\x00"+exchanges[j].Name
	})
	sort.SliceStable(bindings, func(i, j int) bool {
		a, b := bindings[i], bindings[j]
		return a.VHost+"\x00"+a.Source+"\x00"+a.Destination+"\x00"+a.RoutingKey < b.VHost+"\x00"+b.Source+"\x00"+b.Destination+"\x00"+b.RoutingKey
	})
	doc["queues"], doc["exchanges"], doc["bindings"] = queues, exchanges, bindings
	if vhost == "" {
		vhosts := []defVHost{}
		for _, name := range d.VHosts {
			vhosts = append(vhosts, defVHost{Name: name, Tags: []string{}, Metadata: map[string]any{"description": "", "tags": []string{}}})
		}
		sort.Slice(vhosts, func(i, j int) bool { return vhosts[i].Name < vhosts[j].Name })
		doc["vhosts"] = vhosts
		doc["parameters"] = s.exportParameters()
		for _, sec := range s.api.Definitions {
			part, err := sec.Export()
			if err != nil {
				writeError(w, http.StatusInternalServerError, "internal_error", err.Error())
				return
			}
			for k, v := range part {
				doc[k] = v
			}
		}
	}
	if r.URL.Query().Get("download") != "" {
		w.Header().Set("Content-Disposition", `attachment; filename="`+strings.ReplaceAll(r.URL.Query().Get("download"), `"`, "")+`"`)
	}
	apiJSON(w, http.StatusOK, doc)
}

// readDefinitionsBody returns the document: the JSON body, or the "file"
// field of a multipart form (the RabbitMQ web UI's upload).
func readDefinitionsBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body := http.MaxBytesReader(w, r.Body, maxBody)
	var raw []byte
	var err error
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		r.Body = body
		if err = r.ParseMultipartForm(maxBody); err == nil {
			f, _, ferr := r.FormFile("file")
			if ferr != nil {
				badRequest(w, "the form has no 'file' field")
				return nil, false
			}
			defer f.Close()
			raw, err = io.ReadAll(f)
		}
	} else {
		raw, err = io.ReadAll(body)
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) || strings.Contains(err.Error(), "request body too large") {
			writeError(w, http.StatusRequestEntityTooLarge, "bad_request", "request body larger than the maximum of 20 MiB")
			return nil, false
		}
		badRequest(w, "reading the body: "+err.Error())
		return nil, false
	}
	return raw, true
}

// importPlan is a checked import, ready to apply.
type importPlan struct {
	vhosts    []string
	exchanges []defExchange
	queues    []defQueue
	bindings  []defBinding
	limits    []broker.Command // vhost limits, from parameters (definitions_params.go)
	sections  []func() error
	warnings  []string // for the answer: importWarnings
}

// importWarnings is the answer to an import that applied with warnings
// (200; one without is 204 No Content, as before).
type importWarnings struct {
	Warnings []string `json:"warnings"`
}

func (s *apiServer) importDefinitions(w http.ResponseWriter, r *http.Request, vhost string) {
	raw, ok := readDefinitionsBody(w, r)
	if !ok {
		return
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		badRequest(w, describeJSONError(err))
		return
	}
	plan, err := s.planImport(doc, vhost)
	if err != nil {
		badRequest(w, err.Error())
		return
	}
	if err := s.applyImport(plan); err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "applying the definitions failed part way: "+err.Error())
		return
	}
	if len(plan.warnings) > 0 {
		writeJSON(w, http.StatusOK, importWarnings{Warnings: plan.warnings})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// decodeList decodes doc[key], a JSON array, into dst; a wrong type is
// named with its key.
func decodeList(doc map[string]json.RawMessage, key string, dst any) error {
	raw, ok := doc[key]
	if !ok || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("%s: %s", key, describeJSONError(err))
	}
	return nil
}

// planImport checks the whole document and returns what applies it; it
// changes nothing. With vhost set (a per-vhost import) every object goes
// to that vhost and the document's vhosts and sections are not read.
func (s *apiServer) planImport(doc map[string]json.RawMessage, vhost string) (*importPlan, error) {
	b := s.api.Broker
	p := &importPlan{}
	var vhosts []defVHost
	if err := decodeList(doc, "vhosts", &vhosts); err != nil {
		return nil, err
	}
	var rawVHosts []map[string]json.RawMessage
	_ = decodeList(doc, "vhosts", &rawVHosts) // decoded above: the same array
	for i, v := range rawVHosts {
		if reason := vhostQueueTypeRefusal(v); reason != "" && vhost == "" {
			return nil, fmt.Errorf("vhosts[%d] '%s': %s", i, vhosts[i].Name, reason)
		}
	}
	if err := decodeList(doc, "exchanges", &p.exchanges); err != nil {
		return nil, err
	}
	if err := decodeList(doc, "queues", &p.queues); err != nil {
		return nil, err
	}
	if err := decodeList(doc, "bindings", &p.bindings); err != nil {
		return nil, err
	}
	if vhost != "" {
		vhosts = nil
		for i := range p.exchanges {
			p.exchanges[i].VHost = vhost
		}
		for i := range p.queues {
			p.queues[i].VHost = vhost
		}
		for i := range p.bindings {
			p.bindings[i].VHost = vhost
		}
	}
	known := map[string]bool{}
	for _, v := range b.VHosts() {
		known[v.Name()] = true
	}
	for i, v := range vhosts {
		if v.Name == "" {
			return nil, fmt.Errorf("vhosts[%d]: a vhost needs a name", i)
		}
		if !known[v.Name] {
			p.vhosts = append(p.vhosts, v.Name)
			known[v.Name] = true
		}
	}
	needVHost := func(what string, i int, name string) error {
		if !known[name] {
			return fmt.Errorf("%s[%d]: vhost '%s' does not exist and is not in the file", what, i, name)
		}
		return nil
	}

	exchanges := map[[2]string]defExchange{}
	keptX := p.exchanges[:0]
	for i, x := range p.exchanges {
		if err := needVHost("exchanges", i, x.VHost); err != nil {
			return nil, err
		}
		if standardExchange(x.Name) {
			// RabbitMQ exports leave them out; a file that has them
			// names what every vhost has already.
			continue
		}
		cfg := broker.ExchangeConfig{Name: x.Name, Type: x.Type, Durable: x.Durable, AutoDelete: x.AutoDelete,
			Internal: x.Internal, Args: amqpArgs(x.Arguments)}
		if err := b.CheckExchange(x.VHost, cfg); err != nil {
			return nil, fmt.Errorf("exchanges[%d] '%s' in vhost '%s': %w", i, x.Name, x.VHost, err)
		}
		k := [2]string{x.VHost, x.Name}
		if prev, dup := exchanges[k]; dup {
			if !sameExchange(prev, x) {
				return nil, fmt.Errorf("exchanges[%d]: exchange '%s' in vhost '%s' appears twice, differently", i, x.Name, x.VHost)
			}
			continue
		}
		exchanges[k] = x
		keptX = append(keptX, x)
	}
	p.exchanges = keptX

	queues := map[[2]string]defQueue{}
	keptQ := p.queues[:0]
	for i, q := range p.queues {
		if err := needVHost("queues", i, q.VHost); err != nil {
			return nil, err
		}
		cfg := broker.QueueConfig{Name: q.Name, Durable: q.Durable, AutoDelete: q.AutoDelete, Args: amqpArgs(q.Arguments)}
		if err := b.CheckQueue(q.VHost, cfg); err != nil {
			return nil, fmt.Errorf("queues[%d] '%s' in vhost '%s': %w", i, q.Name, q.VHost, err)
		}
		k := [2]string{q.VHost, q.Name}
		if prev, dup := queues[k]; dup {
			if !sameQueue(prev, q) {
				return nil, fmt.Errorf("queues[%d]: queue '%s' in vhost '%s' appears twice, differently", i, q.Name, q.VHost)
			}
			continue
		}
		queues[k] = q
		keptQ = append(keptQ, q)
	}
	p.queues = keptQ
	if err := checkQueueLimits(b, p.queues); err != nil {
		return nil, err
	}

	exchangeExists := func(vh, name string) bool {
		if _, ok := exchanges[[2]string{vh, name}]; ok || standardExchange(name) {
			return true
		}
		v := b.VHost(vh)
		if v == nil {
			return false
		}
		_, err := v.Exchange(name)
		return err == nil
	}
	// sourceConfig is how a binding's source is (or will be) declared, for
	// the checks of its binding keys (a consistent-hash exchange's weights).
	sourceConfig := func(vh, name string) (broker.ExchangeConfig, bool) {
		if x, ok := exchanges[[2]string{vh, name}]; ok {
			return broker.ExchangeConfig{Name: x.Name, Type: x.Type, Args: amqpArgs(x.Arguments)}, true
		}
		if v := b.VHost(vh); v != nil {
			if x, err := v.Exchange(name); err == nil {
				return x.Config(), true
			}
		}
		return broker.ExchangeConfig{}, false
	}
	queueExists := func(vh, name string) bool {
		if _, ok := queues[[2]string{vh, name}]; ok {
			return true
		}
		v := b.VHost(vh)
		return v != nil && v.LookupQueue(name) != nil
	}
	keptB := p.bindings[:0]
	for i, bd := range p.bindings {
		if err := needVHost("bindings", i, bd.VHost); err != nil {
			return nil, err
		}
		if bd.Source == "" {
			continue // the default exchange's bindings are implicit
		}
		if !exchangeExists(bd.VHost, bd.Source) {
			return nil, fmt.Errorf("bindings[%d]: source exchange '%s' in vhost '%s' does not exist and is not in the file", i, bd.Source, bd.VHost)
		}
		if src, ok := sourceConfig(bd.VHost, bd.Source); ok {
			if err := broker.CheckBinding(src, bd.RoutingKey); err != nil {
				return nil, fmt.Errorf("bindings[%d] of '%s' to '%s' in vhost '%s': %w", i, bd.Source, bd.Destination, bd.VHost, err)
			}
		}
		switch bd.DestinationType {
		case "queue":
			if !queueExists(bd.VHost, bd.Destination) {
				return nil, fmt.Errorf("bindings[%d]: queue '%s' in vhost '%s' does not exist and is not in the file", i, bd.Destination, bd.VHost)
			}
		case "exchange":
			if !exchangeExists(bd.VHost, bd.Destination) {
				return nil, fmt.Errorf("bindings[%d]: exchange '%s' in vhost '%s' does not exist and is not in the file", i, bd.Destination, bd.VHost)
			}
		default:
			return nil, fmt.Errorf("bindings[%d]: destination_type must be queue or exchange, not '%s'", i, bd.DestinationType)
		}
		keptB = append(keptB, bd)
	}
	p.bindings = keptB

	if vhost != "" {
		return p, nil
	}
	limits, err := planParameters(doc, known)
	if err != nil {
		return nil, err
	}
	p.limits = limits
	owned := map[string]bool{"vhosts": true, "queues": true, "exchanges": true, "bindings": true, "parameters": true}
	for _, k := range ignoredKeys {
		owned[k] = true
	}
	for _, sec := range s.api.Definitions {
		// Every section sees the document's vhosts, to check references.
		part := map[string]json.RawMessage{"vhosts": doc["vhosts"]}
		for _, k := range sec.Keys {
			owned[k] = true
			if v, ok := doc[k]; ok {
				part[k] = v
			}
		}
		var apply func() error
		var warnings []string
		var err error
		if sec.PrepareWarn != nil {
			apply, warnings, err = sec.PrepareWarn(part)
		} else {
			apply, err = sec.Prepare(part)
		}
		if err != nil {
			return nil, err
		}
		p.warnings = append(p.warnings, warnings...)
		if apply != nil {
			p.sections = append(p.sections, apply)
		}
	}
	var unknown []string
	for k, v := range doc {
		if !owned[k] && !emptyJSON(v) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("this node cannot import %s (nothing was imported)", strings.Join(unknown, ", "))
	}
	return p, nil
}

// emptyJSON says whether v is null, [] or {}.
func emptyJSON(v json.RawMessage) bool {
	t := strings.TrimSpace(string(v))
	if t == "null" || t == "[]" || t == "{}" {
		return true
	}
	var a []json.RawMessage
	if json.Unmarshal(v, &a) == nil && len(a) == 0 {
		return true
	}
	var m map[string]json.RawMessage
	return json.Unmarshal(v, &m) == nil && len(m) == 0
}

func standardExchange(name string) bool {
	return slices.Contains([]string{"amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match", "amq.default"}, name)
}

func sameExchange(a, b defExchange) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func sameQueue(a, b defQueue) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// applyImport declares what the plan holds, in dependency order.
func (s *apiServer) applyImport(p *importPlan) error {
	b := s.api.Broker
	for _, name := range p.vhosts {
		if err := b.Apply(broker.AddVHost{Name: name}); err != nil {
			return fmt.Errorf("vhost '%s': %w", name, err)
		}
	}
	for _, x := range p.exchanges {
		v := b.VHost(x.VHost)
		if _, err := v.DeclareExchange(broker.ExchangeConfig{Name: x.Name, Type: x.Type, Durable: x.Durable, AutoDelete: x.AutoDelete,
			Internal: x.Internal, Args: amqpArgs(x.Arguments)}, false); err != nil {
			return fmt.Errorf("exchange '%s' in vhost '%s': %w", x.Name, x.VHost, err)
		}
	}
	for _, q := range p.queues {
		v := b.VHost(q.VHost)
		if _, err := v.DeclareQueue(broker.QueueConfig{Name: q.Name, Durable: q.Durable, AutoDelete: q.AutoDelete,
			Args: amqpArgs(q.Arguments)}, false, 0); err != nil {
			return fmt.Errorf("queue '%s' in vhost '%s': %w", q.Name, q.VHost, err)
		}
	}
	for _, bd := range p.bindings {
		v := b.VHost(bd.VHost)
		var err error
		if bd.DestinationType == "queue" {
			err = v.BindQueue(bd.Destination, bd.Source, bd.RoutingKey, amqpArgs(bd.Arguments), 0)
		} else {
			err = v.BindExchange(bd.Destination, bd.Source, bd.RoutingKey, amqpArgs(bd.Arguments))
		}
		if err != nil {
			return fmt.Errorf("binding of '%s' to '%s' in vhost '%s': %w", bd.Source, bd.Destination, bd.VHost, err)
		}
	}
	// Limits after the objects: a max-queues the file sets must not
	// refuse the file's own queues (it holds back later declares).
	for _, c := range p.limits {
		if err := b.Change(c); err != nil {
			return fmt.Errorf("vhost limits: %w", err)
		}
	}
	for _, apply := range p.sections {
		if err := apply(); err != nil {
			return err
		}
	}
	return nil
}

// checkQueueLimits refuses an import whose new queues would take a vhost
// past its max-queues: applied, it would stop at the limit part way.
// The file's own vhost-limits parameters are applied after its queues
// (definitions_params.go), so the limit in force now is the one that
// counts.
func checkQueueLimits(b *broker.Broker, queues []defQueue) error {
	added := map[string]int{}
	for _, q := range queues {
		if v := b.VHost(q.VHost); v == nil || v.LookupQueue(q.Name) == nil {
			added[q.VHost]++
		}
	}
	for vh, n := range added {
		if v := b.VHost(vh); v != nil {
			if err := v.CheckQueueLimit(n); err != nil {
				return fmt.Errorf("queues: %w", err)
			}
		}
	}
	return nil
}
