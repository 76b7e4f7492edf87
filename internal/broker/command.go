package broker

import "github.com/tern-broker/tern/internal/flow"

// Command is one change to a node's definitions, as a value. Every change
// to vhosts, exchanges, queues, bindings and limits is a Command applied by
// VHost.applyLocked (Broker.Apply for callers outside the package): a
// client's declare, the configuration, recovery's replay of the log and a
// cluster's metadata Raft group (Broker.ApplyReplicated, meta_apply.go)
// all take that one path. Applying is deterministic: the same commands on
// the same state give the same state, which is what lets the store replay
// them and a Raft group replicate them. Commands encode with EncodeCommand
// (codec.go).
//
// Validation (access, equivalence, reserved names) happens before a
// command is made; applying an already-valid command cannot fail except
// for storage. A durable command is appended to the definitions log in the
// order it is applied and the caller answers only once it is fsynced; in a
// cluster the command is proposed instead and the caller answers once it
// is committed and applied (meta.go).
type Command interface{ command() }

// AddVHost creates a vhost if it does not exist.
type AddVHost struct{ Name string }

// DeclareExchange creates an exchange; one that already exists is left as
// it is (equivalence is checked before the command is made).
type DeclareExchange struct{ ExchangeDef }

// DeleteExchange removes an exchange and every binding from or to it.
type DeleteExchange struct{ VHost, Name string }

// DeclareQueue creates a queue; ID names a durable queue's log, so a
// replayed declare reopens the same log.
type DeclareQueue struct{ QueueDef }

// DeleteQueue removes a queue, its messages, its log and its bindings. ID,
// when set (a cluster's deletes), names the one queue meant: a queue of
// the same name declared since has another ID and stays, so a replayed
// delete cannot remove its successor. A single node's deletes leave it
// empty and delete by name.
type DeleteQueue struct{ VHost, Name, ID string }

// Bind adds a binding; one that exists already is left.
type Bind struct{ BindingDef }

// Unbind removes a binding; a missing one is no change.
type Unbind struct{ BindingDef }

// SetLimits replaces the node's publish rate limits. Limits come from the
// configuration and the HTTP API, so they are applied but not logged: a
// restart takes the configured limits again, as it always has.
type SetLimits struct{ Limits []flow.Limit }

// SetPolicy adds or replaces a policy (Operator: an operator policy) and
// applies it at once to the vhost's queues and exchanges (policy_apply.go).
// It was validated (ValidatePolicy) before it was made.
type SetPolicy struct {
	Operator bool
	Policy
}

// ClearPolicy removes a policy (Operator: an operator policy); a missing
// one is no change.
type ClearPolicy struct {
	Operator    bool
	VHost, Name string
}

func (AddVHost) command()        {}
func (SetPolicy) command()       {}
func (ClearPolicy) command()     {}
func (DeclareExchange) command() {}
func (DeleteExchange) command()  {}
func (DeclareQueue) command()    {}
func (DeleteQueue) command()     {}
func (Bind) command()            {}
func (Unbind) command()          {}
func (SetLimits) command()       {}
