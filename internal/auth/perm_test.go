package auth

import (
	"errors"
	"testing"
)

func TestGrantAllows(t *testing.T) {
	t.Parallel()
	g := newGrant(Permission{Configure: `^app\.`, Write: "", Read: "^$"})
	for _, c := range []struct {
		a    Access
		name string
		want bool
	}{
		{Configure, "app.q", true},
		{Configure, "xapp.q", false},
		{Configure, "my.app.q", false},
		{Write, "app.q", false}, // "" allows nothing
		{Write, "", false},
		{Read, "", true}, // "^$" matches only an empty name, which no resource has (the default exchange is "amq.default")
		{Read, "app.q", false},
	} {
		if got := g.Allows(c.a, c.name); got != c.want {
			t.Errorf("%s %q: %v, want %v", c.a, c.name, got, c.want)
		}
	}
	unanchored := newGrant(Permission{Configure: "app"})
	if !unanchored.Allows(Configure, "my-app-queue") {
		t.Error("expressions match anywhere in the name, as RabbitMQ's")
	}
	var none *Grant
	if none.Allows(Read, "x") {
		t.Error("a nil grant allows something")
	}
}

func TestPermissionValidate(t *testing.T) {
	t.Parallel()
	for _, p := range []Permission{{Configure: "("}, {Write: "[a-"}, {Read: `(?=x)`}, {Read: `(a)\1`}} {
		if err := p.Validate(); err == nil {
			t.Errorf("%+v validated", p)
		}
	}
	if err := (Permission{Configure: ".*", Write: "", Read: "^a|b$"}).Validate(); err != nil {
		t.Error(err)
	}
	if err := (TopicPermission{Exchange: "amq.topic", Write: "^{username}("}).Validate(); err == nil {
		t.Error("an invalid topic expression validated")
	}
	if err := (TopicPermission{Write: ".*"}).Validate(); err == nil {
		t.Error("a topic permission without an exchange validated")
	}
}

func TestTopicRulesExpandVariablesQuoted(t *testing.T) {
	t.Parallel()
	s := NewStore()
	s.SetTopicPermission("a.b", "/", TopicPermission{Exchange: "amq.topic", Write: `^{username}\.{client_id}\.`, Read: `^{vhost}`})
	r := s.TopicRules("a.b", "/", "c+1", nil)
	for _, c := range []struct {
		a        Access
		exchange string
		key      string
		want     bool
	}{
		{Write, "amq.topic", "a.b.c+1.x", true},
		{Write, "amq.topic", "aXb.c+1.x", false}, // the dot in the name is not a wildcard
		{Write, "amq.topic", "a.b.c1.x", false},
		{Read, "amq.topic", "/x", true},
		{Read, "amq.topic", "x", false},
		{Write, "other", "anything", true}, // no topic permission there: unrestricted
	} {
		if got := r.Allows(c.a, c.exchange, c.key); got != c.want {
			t.Errorf("%s %s %q: %v, want %v", c.a, c.exchange, c.key, got, c.want)
		}
	}
	if !r.Restricts("amq.topic") || r.Restricts("other") {
		t.Error("Restricts wrong")
	}
	if s.TopicRules("nobody", "/", "", nil) != nil {
		t.Error("a user without topic permissions has rules")
	}
}

func TestStoreForgetsWithUserAndVHost(t *testing.T) {
	t.Parallel()
	s := NewStore()
	s.Put(User{Name: "u"})
	s.SetPermission("u", "/", Permission{Configure: ".*"})
	s.SetPermission("u", "v", Permission{Configure: ".*"})
	s.SetTopicPermission("u", "v", TopicPermission{Exchange: "x"})
	s.SetVHostLimit("v", LimitMaxQueues, 3)
	s.SetUserLimit("u", LimitMaxChannels, 2)
	g0 := s.Generation()
	s.DeleteVHost("v")
	if s.Generation() == g0 {
		t.Error("the generation did not move")
	}
	if s.CanAccess("u", "v") || !s.CanAccess("u", "/") || len(s.TopicPermissions()) != 0 || s.VHostLimit("v", LimitMaxQueues) != -1 {
		t.Error("deleting a vhost left its permissions or limits")
	}
	s.Delete("u")
	if _, ok := s.Lookup("u"); ok || len(s.Permissions()) != 0 || s.UserLimit("u", LimitMaxChannels) != -1 {
		t.Error("deleting a user left it, its permissions or limits")
	}
}

func TestConnectionAndChannelLimits(t *testing.T) {
	t.Parallel()
	s := NewStore()
	s.SetVHostLimit("/", LimitMaxConnections, 2)
	s.SetUserLimit("u", LimitMaxConnections, 1)
	r1, err := s.OpenConnection("u", "/")
	if err != nil {
		t.Fatal(err)
	}
	var le *LimitError
	if _, err := s.OpenConnection("u", "/"); !errors.As(err, &le) || le.Scope != "user" || le.Value != 1 {
		t.Errorf("second connection of u: %v", err)
	}
	r2, err := s.OpenConnection("w", "/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenConnection("x", "/"); !errors.As(err, &le) || le.Scope != "vhost" || le.Value != 2 {
		t.Errorf("third connection to /: %v", err)
	}
	r1()
	r1() // once only
	if r, err := s.OpenConnection("x", "/"); err != nil {
		t.Errorf("after a release: %v", err)
	} else {
		r()
	}
	r2()
	s.SetUserLimit("u", LimitMaxChannels, 1)
	if err := s.OpenChannel("u"); err != nil {
		t.Fatal(err)
	}
	if err := s.OpenChannel("u"); !errors.As(err, &le) || le.Limit != LimitMaxChannels {
		t.Errorf("second channel: %v", err)
	}
	s.CloseChannel("u")
	if err := s.OpenChannel("u"); err != nil {
		t.Errorf("after a close: %v", err)
	}
	if err := ValidLimit("vhost", "max-channels"); err == nil {
		t.Error("max-channels is a user limit, not a vhost one")
	}
}
