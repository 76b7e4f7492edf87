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
	// VHosts the user may open; "*" means all.
	VHosts []string
	// Tags such as "administrator", for the management API.
	Tags []string
}

// Store is the set of users.
type Store struct {
	mu       sync.RWMutex
	users    map[string]*User
	verified map[string][32]byte // user → SHA-256 of the last password that verified
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{users: map[string]*User{}, verified: map[string][32]byte{}}
}

// Put adds or replaces a user.
func (s *Store) Put(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.Name] = &u
	delete(s.verified, u.Name)
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

// CanAccess reports whether user may open vhost.
func (u User) CanAccess(vhost string) bool {
	for _, v := range u.VHosts {
		if v == "*" || v == vhost {
			return true
		}
	}
	return false
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
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || t == 0 || p == 0 || m > 1<<22 || t > 16 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 128 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}
