package config

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Cluster joins this node to a cluster on Raft (docs/clustering.md). The
// zero value (no node_id and no other cluster setting) is the single node
// of before.
type Cluster struct {
	// NodeID is this node's name ("n1"): letters, digits, '.', '_', '-',
	// at most 64 bytes. Its Raft replica id is NodeIDFor(NodeID).
	NodeID string `toml:"node_id"`
	// Addr is the cluster port's listen address, host:port with a host:
	// outgoing cluster connections leave from that host, so nodes on
	// 127.0.0.11, 127.0.0.12, … of one machine are told apart by address.
	Addr string `toml:"cluster_addr"`
	// Peers are every node of the cluster's initial membership, this one
	// included, as "name@host:port" (a voter) or "name@host:port/standby"
	// (a non-voting learner). Every node must be given the same list.
	Peers []string `toml:"peers"`
	// SecretFile holds the shared secret every node presents (its
	// trailing newline is not part of it). Secret is the secret itself:
	// read from SecretFile, or TERN_CLUSTER_SECRET; never from TOML.
	SecretFile string `toml:"secret_file"`
	Secret     []byte `toml:"-"`
	// Role is "voter" (the default) or "standby": it must match this
	// node's entry in Peers.
	Role string `toml:"role"`
	// Join: this node joins a running cluster (docs/clustering.md,
	// "Adding and removing nodes"): it bootstraps no group and waits to
	// be added with `tern cluster add-node`. Read at its first start only.
	Join bool `toml:"join"`
	// DownGrace is how long the metadata leader hears nothing from a
	// node before it deletes the node's exclusive and non-durable queues
	// cluster-wide (0: the default, 15s; docs/clustering.md).
	DownGrace Duration `toml:"down_grace"`
	// TLS, when CertFile is set, encrypts the cluster port: every node
	// presents CertFile/KeyFile and accepts peers whose certificate
	// CAFile signed.
	TLS ClusterTLS `toml:"tls"`
}

// ClusterTLS names the PEM files of the cluster port's TLS.
type ClusterTLS struct {
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	CAFile   string `toml:"ca_file"`
}

// Peer is one entry of Cluster.Peers, parsed.
type Peer struct {
	Name    string
	Addr    string
	Standby bool
	// ID is the node's Raft replica id, NodeIDFor(Name).
	ID uint64
}

// Roles a node may have.
const (
	RoleVoter   = "voter"
	RoleStandby = "standby"
)

// MinSecretLen is the shortest cluster secret accepted: 16 bytes, so a
// secret is not a guessable word.
const MinSecretLen = 16

// Enabled reports whether any cluster setting is present: such a node is
// in cluster mode (and Validate demands the rest).
func (c Cluster) Enabled() bool {
	return c.NodeID != "" || c.Addr != "" || len(c.Peers) > 0 || c.SecretFile != "" || len(c.Secret) > 0 ||
		c.Role != "" || c.TLS != (ClusterTLS{}) || c.Join
}

// NodeIDFor is the Raft replica id of the node named name: the FNV-64a
// hash of the name, so every node derives every other's id from the peer
// list alone, with nothing to allocate or agree on. Validate refuses a
// peer list in which two names hash alike (or one hashes to 0, which Raft
// reserves). A name therefore stands for one replica id forever: a node
// removed from the cluster must not come back under the same name (its id
// would be reused); give the replacement a new name.
func NodeIDFor(name string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return h.Sum64()
}

var nodeName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ParsePeer parses "name@host:port" or "name@host:port/standby".
func ParsePeer(s string) (Peer, error) {
	s = strings.TrimSpace(s)
	name, addr, ok := strings.Cut(s, "@")
	if !ok {
		return Peer{}, fmt.Errorf("peer %q is not name@host:port", s)
	}
	p := Peer{Name: name}
	if i := strings.LastIndexByte(addr, '/'); i >= 0 {
		switch addr[i+1:] {
		case RoleStandby:
			p.Standby = true
		case RoleVoter:
		default:
			return Peer{}, fmt.Errorf("peer %q: role %q is not voter or standby", s, addr[i+1:])
		}
		addr = addr[:i]
	}
	if !nodeName.MatchString(name) {
		return Peer{}, fmt.Errorf("peer %q: node name %q must be 1-64 letters, digits, '.', '_' or '-'", s, name)
	}
	if err := checkClusterAddr(addr); err != nil {
		return Peer{}, fmt.Errorf("peer %q: %w", s, err)
	}
	p.Addr, p.ID = addr, NodeIDFor(name)
	return p, nil
}

// checkClusterAddr demands host:port with a host and a fixed port: peers
// dial it, and outgoing connections leave from its host.
func checkClusterAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q is not host:port", addr)
	}
	if host == "" {
		return fmt.Errorf("address %q has no host (cluster connections leave from it and peers dial it: give an IP address or name)", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("address %q needs a port 1-65535 (peers must know it in advance)", addr)
	}
	return nil
}

// ParsedPeers parses Peers; Validate has checked them.
func (c Cluster) ParsedPeers() ([]Peer, error) {
	var out []Peer
	for _, s := range c.Peers {
		p, err := ParsePeer(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Self is this node's entry in Peers.
func (c Cluster) Self() (Peer, bool) {
	peers, _ := c.ParsedPeers()
	for _, p := range peers {
		if p.Name == c.NodeID {
			return p, true
		}
	}
	return Peer{}, false
}

// validate checks the cluster settings of a node in cluster mode.
func (c Cluster) validate() []error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("config: cluster: "+format, a...)) }
	switch {
	case c.NodeID == "":
		bad("a cluster setting is present but node_id (--node-id, TERN_NODE_ID) is not: name this node")
	case !nodeName.MatchString(c.NodeID):
		bad("node_id %q must be 1-64 letters, digits, '.', '_' or '-'", c.NodeID)
	}
	if c.Addr == "" {
		bad("cluster_addr (--cluster-addr, TERN_CLUSTER_ADDR) is required in a cluster")
	} else if err := checkClusterAddr(c.Addr); err != nil {
		bad("cluster_addr: %v", err)
	}
	switch c.Role {
	case "", RoleVoter, RoleStandby:
	default:
		bad("role %q is not voter or standby", c.Role)
	}
	if len(c.Secret) == 0 {
		bad("a shared secret is required (--cluster-secret-file FILE, secret_file, or TERN_CLUSTER_SECRET): every node presents it and a peer without it is refused")
	} else if len(c.Secret) < MinSecretLen {
		bad("the shared secret is %d bytes; use at least %d (for instance `head -c 32 /dev/urandom | base64 > secret`)", len(c.Secret), MinSecretLen)
	}
	t := c.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		bad("tls needs both cert_file and key_file")
	}
	if t.CertFile != "" && t.CAFile == "" {
		bad("tls needs ca_file: the certificate authority that signed the peers' certificates")
	}
	if t.CertFile == "" && t.CAFile != "" {
		bad("tls ca_file is set without cert_file and key_file")
	}
	if len(c.Peers) == 0 {
		bad("peers (--peers, TERN_PEERS) is required: every node of the cluster as name@host:port, this one included")
		return errs
	}
	names, ids, addrs := map[string]bool{}, map[uint64]string{}, map[string]string{}
	voters := 0
	var self *Peer
	for _, s := range c.Peers {
		p, err := ParsePeer(s)
		if err != nil {
			bad("%v", err)
			continue
		}
		if names[p.Name] {
			bad("node %q is listed twice in peers", p.Name)
			continue
		}
		names[p.Name] = true
		if p.ID == 0 {
			bad("node name %q hashes to Raft id 0, which Raft reserves; choose another name", p.Name)
		} else if other, dup := ids[p.ID]; dup {
			bad("node names %q and %q hash to the same Raft id %d; rename one", other, p.Name, p.ID)
		}
		ids[p.ID] = p.Name
		if other, dup := addrs[p.Addr]; dup {
			bad("nodes %q and %q have the same address %s", other, p.Name, p.Addr)
		}
		addrs[p.Addr] = p.Name
		if !p.Standby {
			voters++
		}
		if p.Name == c.NodeID {
			self = &p
		}
	}
	if voters == 0 && len(errs) == 0 {
		bad("peers has no voter: at least one node must not be /standby")
	}
	if c.NodeID != "" && self == nil && len(errs) == 0 {
		bad("peers does not list this node %q: give every node of the cluster, this one included", c.NodeID)
	}
	if self != nil {
		if c.Addr != "" && self.Addr != c.Addr {
			bad("peers lists %s at %s but cluster_addr is %s: they must be the same", self.Name, self.Addr, c.Addr)
		}
		role := c.Role
		if role == "" {
			role = RoleVoter
		}
		if self.Standby != (role == RoleStandby) {
			want := self.Name + "@" + self.Addr
			if role == RoleStandby {
				want += "/standby"
			}
			bad("role is %s but peers lists this node as %q; every node must be given the same membership: write %q in every node's peers", role, peerString(*self), want)
		}
	}
	return errs
}

func peerString(p Peer) string {
	s := p.Name + "@" + p.Addr
	if p.Standby {
		s += "/standby"
	}
	return s
}

// readSecret reads a secret file, without its trailing line break.
func readSecret(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: cluster secret file: %w", err)
	}
	raw = []byte(strings.TrimRight(string(raw), "\r\n"))
	if len(raw) == 0 {
		return nil, errors.New("config: cluster secret file " + path + " is empty")
	}
	return raw, nil
}

// secretFileWarning is a warning when the secret file is readable by
// users other than its owner.
func (c Cluster) secretFileWarning() string {
	if c.SecretFile == "" {
		return ""
	}
	fi, err := os.Stat(c.SecretFile)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return ""
	}
	return fmt.Sprintf("the cluster secret file %s is readable by other users (mode %v); chmod 600 it", c.SecretFile, fi.Mode().Perm())
}

// loadClusterLayers applies the environment and flags to the cluster
// settings the TOML file left in c (later layers win, as for every
// setting) and reads the secret: TOML secret_file, then
// TERN_CLUSTER_SECRET_FILE, then TERN_CLUSTER_SECRET (the secret itself),
// then --cluster-secret-file.
func loadClusterLayers(c *Cluster, env func(string) (string, bool), set map[string]bool, peersFlag, secretFlag string) error {
	if v, ok := env("TERN_PEERS"); ok {
		c.Peers = splitList(v)
	}
	if set["peers"] {
		c.Peers = splitList(peersFlag)
	}
	if v, ok := env("TERN_CLUSTER_SECRET_FILE"); ok {
		c.SecretFile = v
	}
	if v, ok := env("TERN_CLUSTER_SECRET"); ok {
		c.Secret, c.SecretFile = []byte(v), ""
	}
	if set["cluster-secret-file"] {
		c.Secret, c.SecretFile = nil, secretFlag
	}
	if c.SecretFile != "" {
		s, err := readSecret(c.SecretFile)
		if err != nil {
			return err
		}
		c.Secret = s
	}
	return nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
