package auth

import (
	"errors"
	"net"
	"testing"
)

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	s := NewStore()
	s.Put(User{Name: "guest", PasswordHash: HashPassword("guest"), LoopbackOnly: true, VHosts: []string{"/"}})
	s.Put(User{Name: "app", PasswordHash: HashPassword("s3cret"), VHosts: []string{"*"}})
	loop := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 1}
	remote := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1}
	cases := []struct {
		user, pass string
		from       net.Addr
		ok         bool
	}{
		{"guest", "guest", loop, true},
		{"guest", "guest", loop, true}, // cached path
		{"guest", "guest", remote, false},
		{"guest", "wrong", loop, false},
		{"app", "s3cret", remote, true},
		{"nobody", "x", loop, false},
	}
	for _, c := range cases {
		_, err := s.Authenticate(c.user, c.pass, c.from)
		if (err == nil) != c.ok {
			t.Errorf("%s/%s from %v: err=%v, want ok=%v", c.user, c.pass, c.from, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrRefused) {
			t.Errorf("error %v does not wrap ErrRefused", err)
		}
	}
	s.SetPermission("guest", "/", Permission{Configure: ".*", Write: ".*", Read: ".*"})
	if !s.CanAccess("guest", "/") || s.CanAccess("guest", "other") || s.CanAccess("app", "/") {
		t.Error("vhost access wrong")
	}
}

func TestVerifyRejectsMalformed(t *testing.T) {
	t.Parallel()
	for _, phc := range []string{"", "$argon2id$", "$bcrypt$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$m=999999999,t=1,p=1$AA$AA"} {
		if VerifyPassword(phc, "x") {
			t.Errorf("verified %q", phc)
		}
	}
}
