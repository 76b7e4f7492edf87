package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
)

// ErrRefused is returned for any failed login; the reason goes to the log,
// never to the client.
var ErrRefused = errors.New("auth: login refused")

// User is an account.
type User struct {
	Name string
	// PasswordHash is an argon2id PHC string ("$argon2id$v=19$m=…").
	PasswordHash string
	// LoopbackOnly restricts logins to loopback addresses, as RabbitMQ does
	// for guest by default.
	LoopbackOnly bool
	// VHosts is the configuration file's shorthand for permissions
	// ("*": every vhost): the server turns it into full permissions
	// (SeedPermissions). The store's permissions decide access.
	VHosts []string
	// Tags such as "administrator", for the management API.
	Tags []string
}

// Store is the set of users, their permissions, topic permissions and
// limits, and the connections and channels open against the limits.
type Store struct {
	mu       sync.RWMutex
	users    map[string]*User
	verified map[string][32]byte                              // user → SHA-256 of the last password that verified
	grants   map[string]map[string]*Grant                     // user → vhost
	topics   map[string]map[string]map[string]TopicPermission // user → vhost → exchange
	vlimits  map[string]map[string]int64                      // vhost → limit name → value
	ulimits  map[string]map[string]int64                      // user → limit name → value
	// gen moves on every change of permissions, users or limits, so a
	// connection's cached decisions (a channel's per-exchange publish
	// check) are refreshed by one atomic load.
	gen atomic.Uint64

	open openCounts // limits.go
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{users: map[string]*User{}, verified: map[string][32]byte{},
		grants: map[string]map[string]*Grant{}, topics: map[string]map[string]map[string]TopicPermission{},
		vlimits: map[string]map[string]int64{}, ulimits: map[string]map[string]int64{}}
}

// Put adds or replaces a user.
func (s *Store) Put(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.Name] = &u
	delete(s.verified, u.Name)
	s.gen.Add(1)
}

// Lookup returns a copy of the named user.
func (s *Store) Lookup(name string) (User, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[name]
	if !ok {
		return User{}, false
	}
	return *u, true
}

// Authenticate checks a password for a login from remote.
func (s *Store) Authenticate(name, password string, remote net.Addr) (User, error) {
	s.mu.RLock()
	u, ok := s.users[name]
	var cached [32]byte
	var hit bool
	if ok {
		cached, hit = s.verified[name]
	}
	s.mu.RUnlock()
	if !ok {
		return User{}, fmt.Errorf("%w: user '%s' does not exist", ErrRefused, name)
	}
	if u.LoopbackOnly && !isLoopback(remote) {
		return User{}, fmt.Errorf("%w: user '%s' can only connect via localhost", ErrRefused, name)
	}
	sum := sha256.Sum256([]byte(password))
	if hit && subtle.ConstantTimeCompare(sum[:], cached[:]) == 1 {
		return *u, nil
	}
	if u.PasswordHash == "" {
		// Certificate logins only, or a user imported from RabbitMQ with a
		// hash Tern cannot verify: an administrator must set a password.
		return User{}, fmt.Errorf("%w: user '%s' has no password", ErrRefused, name)
	}
	if !VerifyPassword(u.PasswordHash, password) {
		return User{}, fmt.Errorf("%w: invalid credentials for user '%s'", ErrRefused, name)
	}
	s.mu.Lock()
	if cur, ok := s.users[name]; ok && cur == u {
		s.verified[name] = sum
	}
	s.mu.Unlock()
	return *u, nil
}

func isLoopback(a net.Addr) bool {
	if a == nil {
		return false
	}
	host := a.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// argon2id parameters: ~10 ms per check on a small machine, which the
// verified cache pays once per user and password.
const (
	argonTime    = 1
	argonMemory  = 16 * 1024
	argonThreads = 2
	argonKeyLen  = 32
)

// HashPassword returns an argon2id PHC string for password.
func HashPassword(password string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// VerifyPassword checks password against a PHC string from HashPassword.
func VerifyPassword(phc, password string) bool {
	h, err := parsePHC(phc)
	if err != nil {
		return false
	}
	got := argon2.IDKey([]byte(password), h.salt, h.t, h.m, h.p, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

// CheckHash reports why phc is not an argon2id PHC string that
// VerifyPassword can check, so a configuration with a placeholder or a
// truncated hash is refused at start-up instead of refusing every login.
func CheckHash(phc string) error {
	_, err := parsePHC(phc)
	return err
}

type phcHash struct {
	m, t      uint32
	p         uint8
	salt, key []byte
}

// parsePHC splits "$argon2id$v=19$m=16384,t=1,p=2$<salt>$<key>" (salt and
// key in unpadded standard base64) and bounds its cost parameters, so a
// hostile or mistyped hash cannot make a login allocate gigabytes.
func parsePHC(phc string) (phcHash, error) {
	var h phcHash
	parts := strings.Split(phc, "$")
	if len(parts) >= 3 && parts[0] == "" && parts[1] != "argon2id" {
		return h, fmt.Errorf("auth: hash algorithm %q is not argon2id", parts[1])
	}
	if len(parts) != 6 || parts[0] != "" {
		return h, errors.New("auth: not an argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash; tern hash-password prints one)")
	}
	if parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return h, fmt.Errorf("auth: argon2 version %q is not v=%d", parts[2], argon2.Version)
	}
	var m, t, p uint32
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || n != 3 || fmt.Sprintf("m=%d,t=%d,p=%d", m, t, p) != parts[3] {
		return h, fmt.Errorf("auth: argon2 parameters %q are not m=<KiB>,t=<passes>,p=<lanes>", parts[3])
	}
	if m < 8 || m > 1<<22 || t == 0 || t > 16 || p == 0 || p > 255 {
		return h, fmt.Errorf("auth: argon2 parameters %q out of range (m 8…4194304 KiB, t 1…16, p 1…255)", parts[3])
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return h, errors.New("auth: argon2 salt is not unpadded base64 of at least 8 bytes")
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 128 {
		return h, errors.New("auth: argon2 hash is not unpadded base64 of 16 to 128 bytes")
	}
	return phcHash{m: m, t: t, p: uint8(p), salt: salt, key: key}, nil
}
