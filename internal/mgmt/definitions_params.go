package mgmt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
)

// RabbitMQ exports a vhost's limits as a runtime parameter of component
// "vhost-limits" (named "limits", its value the vhost's whole set:
// {"max-connections": 100, "max-queues": 10}); Tern exports them the same
// way and imports them, replacing the vhost's limits as RabbitMQ does (a
// limit the value leaves out is cleared). Other components (federation
// upstreams, shovels…) are refused: Tern has none of them, and an import
// that dropped them would be half done.

// vhostLimitsComponent is the runtime parameter component of vhost limits.
const vhostLimitsComponent = "vhost-limits"

// defParameter is a runtime parameter as RabbitMQ exports it.
type defParameter struct {
	Value     json.RawMessage `json:"value"`
	VHost     string          `json:"vhost"`
	Component string          `json:"component"`
	Name      string          `json:"name"`
}

// defParameterOut is one exported.
type defParameterOut struct {
	Value     map[string]int64 `json:"value"`
	VHost     string           `json:"vhost"`
	Component string           `json:"component"`
	Name      string           `json:"name"`
}

// exportParameters are the vhosts' limits as RabbitMQ's parameters.
func (s *apiServer) exportParameters() []defParameterOut {
	out := []defParameterOut{}
	for _, l := range s.api.Broker.Users().VHostLimits() {
		if len(l.Value) > 0 {
			out = append(out, defParameterOut{Value: l.Value, VHost: l.VHost, Component: vhostLimitsComponent, Name: "limits"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VHost < out[j].VHost })
	return out
}

// planParameters checks the document's parameters and returns the
// commands that set them; known holds the vhosts that exist or the file
// declares.
func planParameters(doc map[string]json.RawMessage, known map[string]bool) ([]broker.Command, error) {
	var params []defParameter
	if err := decodeList(doc, "parameters", &params); err != nil {
		return nil, err
	}
	var cmds []broker.Command
	seen := map[string]bool{}
	for i, p := range params {
		if p.Component != vhostLimitsComponent {
			return nil, fmt.Errorf("parameters[%d]: component '%s' (vhost '%s', name '%s') is not supported by this node: only vhost-limits are (nothing was imported)", i, p.Component, p.VHost, p.Name)
		}
		if !known[p.VHost] {
			return nil, fmt.Errorf("parameters[%d]: vhost '%s' does not exist and is not in the file", i, p.VHost)
		}
		if seen[p.VHost] {
			return nil, fmt.Errorf("parameters[%d]: vhost '%s' has two vhost-limits", i, p.VHost)
		}
		seen[p.VHost] = true
		var value map[string]json.Number
		dec := json.NewDecoder(bytes.NewReader(p.Value))
		dec.UseNumber()
		if err := dec.Decode(&value); err != nil || value == nil {
			return nil, fmt.Errorf("parameters[%d]: the value of vhost '%s''s limits must be an object of integers", i, p.VHost)
		}
		for name, v := range value {
			if !slices.Contains(auth.VHostLimitNames, name) {
				return nil, fmt.Errorf("parameters[%d]: unknown vhost limit '%s' (known: %v)", i, name, auth.VHostLimitNames)
			}
			if _, err := v.Int64(); err != nil {
				return nil, fmt.Errorf("parameters[%d]: vhost limit '%s' must be an integer, not %s", i, name, v)
			}
		}
		for _, name := range auth.VHostLimitNames {
			n := int64(-1) // absent: cleared, as RabbitMQ replaces the whole set
			if v, ok := value[name]; ok {
				n, _ = v.Int64()
			}
			cmds = append(cmds, broker.SetVHostLimit{VHost: p.VHost, Name: name, Value: max(n, -1)})
		}
	}
	return cmds, nil
}
