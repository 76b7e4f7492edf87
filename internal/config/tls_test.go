package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTLSListenersOffWithoutACertificate(t *testing.T) {
	t.Parallel()
	cfg, err := Load(nil, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLSEnabled() {
		t.Fatal("TLS on by default without a certificate")
	}
	if cfg.AMQPSAddr != ":5671" || cfg.MQTTSAddr != ":8883" || cfg.HTTPSAddr != ":15671" || cfg.MQTTWSSAddr != ":15676" {
		t.Errorf("default TLS addresses %q %q %q %q", cfg.AMQPSAddr, cfg.MQTTSAddr, cfg.HTTPSAddr, cfg.MQTTWSSAddr)
	}
	// Asking for a TLS listener without a certificate is refused, by any layer.
	for _, tc := range []struct {
		args []string
		env  map[string]string
		file string
	}{
		{args: []string{"--amqps-addr", ":5671"}},
		{env: map[string]string{"TERN_MQTTS_ADDR": "127.0.0.1:8883"}},
		{file: `https_addr = ":15671"`},
	} {
		args := tc.args
		if tc.file != "" {
			p := filepath.Join(t.TempDir(), "t.toml")
			if err := os.WriteFile(p, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			args = append(args, "--config", p)
		}
		_, err := Load(args, envOf(tc.env))
		if err == nil || !strings.Contains(err.Error(), "needs a certificate") {
			t.Errorf("%v %v %q: %v, want a refusal naming the missing certificate", tc.args, tc.env, tc.file, err)
		}
	}
	// Disabling one explicitly is fine.
	if _, err := Load([]string{"--amqps-addr", ""}, envOf(nil)); err != nil {
		t.Errorf("--amqps-addr \"\": %v", err)
	}
}

func TestTLSFromFileEnvAndFlags(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "t.toml")
	err := os.WriteFile(p, []byte(`
amqps_addr = "127.0.0.1:5671"
http_open_paths = ["/healthz"]
[tls]
cert_file = "/file/cert.pem"
key_file = "/file/key.pem"
ca_file = "/file/ca.pem"
client_auth = "optional"
min_version = "1.3"
reload_interval = "2s"
cert_login_from = "subject_alternative_name"
cert_login_san_type = "email"
mqtt_cert_login = true
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Load([]string{"--config", p, "--tls-client-auth", "required"}, envOf(map[string]string{"TERN_TLS_KEY_FILE": "/env/key.pem"}))
	if err != nil {
		t.Fatal(err)
	}
	tl := cfg.TLS
	if tl.CertFile != "/file/cert.pem" || tl.KeyFile != "/env/key.pem" || tl.CAFile != "/file/ca.pem" || tl.ClientAuth != "required" ||
		tl.MinVersion != "1.3" || time.Duration(tl.ReloadInterval) != 2*time.Second || tl.CertLoginFrom != "subject_alternative_name" ||
		tl.CertLoginSANType != "email" || !tl.MQTTCertLogin {
		t.Errorf("tls %+v", tl)
	}
	if cfg.AMQPSAddr != "127.0.0.1:5671" || len(cfg.HTTPOpenPaths) != 1 {
		t.Errorf("amqps %q open paths %v", cfg.AMQPSAddr, cfg.HTTPOpenPaths)
	}
}

func TestTLSValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.TLS.CertFile = "c" }, "go together"},
		{func(c *Config) { c.TLS.CertFile, c.TLS.KeyFile, c.TLS.ClientAuth = "c", "k", "required" }, "needs tls.ca_file"},
		{func(c *Config) { c.TLS.ClientAuth = "maybe" }, "not none, optional or required"},
		{func(c *Config) { c.TLS.MinVersion = "1.1" }, "not 1.2 or 1.3"},
		{func(c *Config) { c.TLS.CertLoginFrom = "distinguished_name" }, "cert_login_from"},
		{func(c *Config) { c.TLS.CertLoginSANType = "other_name" }, "cert_login_san_type"},
		{func(c *Config) { c.HTTPOpenPaths = []string{"/api/limits"} }, "http_open_paths"},
	} {
		c := Default()
		tc.set(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v, want %q", err, tc.want)
		}
	}
}
