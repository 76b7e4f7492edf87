package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadPrecedence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tern.toml")
	err := os.WriteFile(path, []byte(`
data_dir = "/from/file"
amqp_addr = "127.0.0.1:1111"
http_addr = ""
memory_high_watermark = "64MiB"
[amqp]
heartbeat = "10s"
[[users]]
name = "app"
password = "pw"
vhosts = ["*"]
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Load([]string{"--config", path, "--amqp-addr", "127.0.0.1:3333"}, envOf(map[string]string{
		"TERN_DATA_DIR":  "/from/env",
		"TERN_AMQP_ADDR": "127.0.0.1:2222",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/from/env" {
		t.Errorf("data dir %q: env must override file", cfg.DataDir)
	}
	if cfg.AMQPAddr != "127.0.0.1:3333" {
		t.Errorf("amqp addr %q: flag must override env", cfg.AMQPAddr)
	}
	if cfg.HTTPAddr != "" {
		t.Errorf("http addr %q: empty in the file must disable", cfg.HTTPAddr)
	}
	if cfg.MemoryHighWatermark != 64<<20 || time.Duration(cfg.AMQP.Heartbeat) != 10*time.Second {
		t.Errorf("watermark %d heartbeat %v", cfg.MemoryHighWatermark, cfg.AMQP.Heartbeat)
	}
	if len(cfg.Users) != 1 || cfg.Users[0].Name != "app" {
		t.Errorf("users %+v", cfg.Users)
	}
}

func TestLoadDefaultsAndDisable(t *testing.T) {
	t.Parallel()
	cfg, err := Load(nil, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AMQPAddr != ":5672" || cfg.HTTPAddr != ":15672" || cfg.DataDir != "./tern-data" {
		t.Errorf("defaults %+v", cfg)
	}
	cfg, err = Load([]string{"--http-addr="}, envOf(map[string]string{"TERN_AMQP_ADDR": ""}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != "" || cfg.AMQPAddr != "" {
		t.Errorf("empty addresses must disable: %+v", cfg)
	}
}

func TestLoadRejectsBadConfig(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bad.toml")
	_ = os.WriteFile(path, []byte("no_such_key = 1\n"), 0o644)
	if _, err := Load([]string{"--config", path}, envOf(nil)); err == nil {
		t.Error("unknown key accepted")
	}
	if _, err := Load([]string{"--log-level", "loud"}, envOf(nil)); err == nil {
		t.Error("bad log level accepted")
	}
}
