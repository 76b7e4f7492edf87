package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodHash = "$argon2id$v=19$m=16384,t=1,p=2$2GIEjucd06AtuV41RHwx5A$4+6q+ELn50FGTmdeUM1FBcmOM/lSsvRH2twDkVGRHsg"

func loadFile(t *testing.T, body string) (Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tern.toml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load([]string{"--config", path}, envOf(nil))
}

func TestLoadRefusesConfigsThatLockEveryoneOut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, body, want string }{
		{"placeholder hash", `
[[users]]
name = "app"
password_hash = "$argon2id$..."`, `user "app": password_hash`},
		{"bcrypt hash", `
[[users]]
name = "app"
password_hash = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"`, "not argon2id"},
		{"truncated hash", `
[[users]]
name = "app"
password_hash = "` + goodHash[:60] + `"`, "password_hash"},
		{"both password and hash", `
[[users]]
name = "app"
password = "pw"
password_hash = "` + goodHash + `"`, "both password and password_hash"},
		{"user names a missing vhost", `
[[users]]
name = "app"
password = "pw"
vhosts = ["staging"]`, `names vhost "staging"`},
		{"limit names a missing vhost", `
[[limits]]
vhost = "nowhere"
publish_rate = 10`, `vhost "nowhere"`},
		{"mqtt_vhost missing", `mqtt_vhost = "devices"`, `mqtt_vhost "devices"`},
		{"tiny segments", `segment_size = "4KiB"`, "segment_size 4096"},
		{"zero segments", `segment_size = 0`, "segment_size 0"},
		{"huge segments", `segment_size = "2GiB"`, "segment_size"},
		{"negative max keep-alive", `mqtt_max_keepalive = -1`, "mqtt_max_keepalive -1"},
		{"max keep-alive past 16 bits", `mqtt_max_keepalive = 70000`, "mqtt_max_keepalive 70000"},
		{"no connect timeout", `mqtt_connect_timeout = 0`, "mqtt_connect_timeout 0"},
		{"negative connect rate", `mqtt_connect_rate_per_address = -1`, "mqtt_connect_rate_per_address -1"},
		{"user twice", `
[[users]]
name = "app"
password = "a"
[[users]]
name = "app"
password = "b"`, "defined twice"},
	} {
		_, err := loadFile(t, tc.body)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestLoadAcceptsExistingVHostsAndRealHashes(t *testing.T) {
	t.Parallel()
	cfg, err := loadFile(t, `
vhosts = ["staging", "devices"]
mqtt_vhost = "devices"
segment_size = "1MiB"
[[users]]
name = "app"
password_hash = "`+goodHash+`"
vhosts = ["/", "staging"]
[[users]]
name = "ops"
password = "pw"
vhosts = ["*"]
[[limits]]
vhost = "staging"
publish_rate = 10`)
	if err != nil {
		t.Fatal(err)
	}
	if w := cfg.Warnings(); len(w) != 1 || !strings.Contains(w[0], "guest") || !strings.Contains(w[0], "mqtt_allow_anonymous") {
		t.Errorf("no guest and anonymous MQTT on: warnings %q", w)
	}
	cfg.MQTTAllowAnonymous = false
	if w := cfg.Warnings(); len(w) != 1 || strings.Contains(w[0], "mqtt_allow_anonymous") {
		t.Errorf("no guest, anonymous MQTT off: warnings %q", w)
	}
	cfg.Users = append(cfg.Users, User{Name: "guest", Password: "guest"})
	if w := cfg.Warnings(); len(w) != 0 {
		t.Errorf("guest defined: warnings %q", w)
	}
	if w := Default().Warnings(); len(w) != 0 {
		t.Errorf("defaults: warnings %q", w)
	}
}
