package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/flow"
)

// Config is the whole configuration. TOML keys are the snake_case names in
// the struct tags; the README's Configuration section lists them all.
type Config struct {
	// DataDir holds durable state. Default "./tern-data".
	DataDir string `toml:"data_dir"`
	// AMQPAddr is the AMQP 0-9-1 listen address. Default ":5672".
	AMQPAddr string `toml:"amqp_addr"`
	// HTTPAddr serves /healthz and /metrics. Default ":15672".
	HTTPAddr string `toml:"http_addr"`
	// MQTTAddr is the MQTT 3.1.1/5.0 listen address. Default ":1883".
	MQTTAddr string `toml:"mqtt_addr"`
	// MQTTWSAddr is the MQTT-over-WebSocket listen address (subprotocol
	// "mqtt", any path). Default ":15675", RabbitMQ's Web MQTT port.
	MQTTWSAddr string `toml:"mqtt_ws_addr"`
	// MQTTWSAllowedOrigins are the web origins ("https://dash.example.com")
	// whose pages may open MQTT-over-WebSocket connections, besides pages
	// served from the broker's own host and port; "*" allows any. Clients
	// that send no Origin header (not browsers) are always allowed.
	// Default none.
	MQTTWSAllowedOrigins []string `toml:"mqtt_ws_allowed_origins"`
	// MQTTAllowAnonymous lets MQTT clients without a user name log in as
	// guest (still loopback-only), as RabbitMQ's MQTT plugin does. Default true.
	MQTTAllowAnonymous bool `toml:"mqtt_allow_anonymous"`
	// MQTTVHost is the vhost MQTT clients use. Default "/".
	MQTTVHost string `toml:"mqtt_vhost"`
	// MQTTQoS0Backlog is how many messages may wait for an MQTT subscriber
	// before QoS 0 messages to it are dropped (and counted). Default 1000000.
	MQTTQoS0Backlog int `toml:"mqtt_qos0_backlog"`
	// MQTTMaxKeepAlive is the longest keep-alive, in seconds, an MQTT client
	// may use, as Mosquitto's max_keepalive: 5.0 clients asking for more (or
	// none) are told this value as Server Keep Alive; 3.1.1 clients are
	// refused. Default 0: no maximum.
	MQTTMaxKeepAlive int `toml:"mqtt_max_keepalive"`
	// MQTTMaxPacketSize is the largest MQTT packet a client may send
	// (RabbitMQ's mqtt.max_packet_size_authenticated): 5.0 clients are
	// told it in CONNACK (Maximum Packet Size); a larger packet ends the
	// connection, with DISCONNECT 0x95 Packet too large for 5.0. Default
	// 16MiB; 1KiB … 256MiB (the protocol's largest packet).
	MQTTMaxPacketSize ByteSize `toml:"mqtt_max_packet_size"`
	// MQTTConnectTimeout closes an MQTT connection that has not sent a whole
	// CONNECT this many seconds after it was accepted. Default 10.
	MQTTConnectTimeout int `toml:"mqtt_connect_timeout"`
	// MQTTConnectRate bounds the MQTT connections accepted per second; a
	// reconnect storm past it waits in the kernel's backlog (counted in
	// tern_mqtt_accept_throttled_total). Default 20000; 0: no limit.
	MQTTConnectRate float64 `toml:"mqtt_connect_rate"`
	// MQTTConnectRatePerAddress bounds the MQTT connections accepted per
	// second from one source address; past it they are closed unread
	// (tern_mqtt_connections_rate_limited_total). Default 1000; 0: no limit.
	MQTTConnectRatePerAddress float64 `toml:"mqtt_connect_rate_per_address"`
	// LogLevel is debug, info, warn or error. Default "info".
	LogLevel string `toml:"log_level"`
	// LogFormat is "text" or "json". Default "text".
	LogFormat string `toml:"log_format"`
	// MemoryHighWatermark is the memory of queued messages (bodies plus the
	// measured per-message cost, see docs/flow-control.md) above which
	// publishers are blocked. Default: 40% of the machine's memory.
	MemoryHighWatermark ByteSize `toml:"memory_high_watermark"`
	// DiskFreeLimit is the free space on the data directory's file system
	// below which publishers are blocked. Default 50MB (RabbitMQ's).
	DiskFreeLimit ByteSize `toml:"disk_free_limit"`
	// Fsync is "always" (the default: a persistent message is confirmed
	// only after an fsync covers it) or "interval" (confirmed once written
	// to the OS, fsynced every FsyncInterval: a power loss may lose up to
	// that interval; a crash of the process loses nothing).
	Fsync         string   `toml:"fsync"`
	FsyncInterval Duration `toml:"fsync_interval"` // default 200ms
	// SegmentSize is the size at which a queue's log rolls to a new
	// segment file, 1MiB to 1GiB. Default 64MiB.
	SegmentSize ByteSize `toml:"segment_size"`
	// QueueMemoryLimit is how many body bytes of ready persistent messages
	// a durable queue keeps in memory; the rest stay on disk until due.
	// Default 4MiB.
	QueueMemoryLimit ByteSize `toml:"queue_memory_limit"`

	// Pprof serves Go's profiler under /debug/pprof/ on the HTTP listener,
	// to profile the broker under load. Default false.
	Pprof bool `toml:"pprof"`

	AMQP AMQP `toml:"amqp"`
	// Security: the TLS listeners, the certificate and HTTP API access (tls.go).
	Security
	// VHosts to create besides "/".
	VHosts []string `toml:"vhosts"`
	// Users to create. Without any, the default guest/guest user (loopback
	// only, as RabbitMQ; tagged administrator) exists; with any, it does not
	// unless one of them is named guest. Tags: "administrator" may change
	// state through the HTTP API.
	Users []User `toml:"users"`
	// Limits are publish rate limits (token buckets); see docs/flow-control.md.
	Limits []flow.Limit `toml:"limits"`
	// Cluster joins this node to a cluster (cluster.go); without it the
	// node is a single node.
	Cluster Cluster `toml:"cluster"`

	// Clock is the server's time source for queue TTLs and x-expires,
	// paced delivery, MQTT expiries, delayed delivery, rate limits, alarm
	// holds and publish time stamps (internal/clock); never
	// read from a file, flag or the environment. nil is the system clock;
	// tests inject a clock.Fake (testkit.WithClock) and advance it instead
	// of sleeping.
	Clock clock.Clock `toml:"-"`
}

// The range of mqtt_max_packet_size: a CONNECT with credentials and a will
// needs some room; the largest packet MQTT can frame is a 4-byte
// remaining length of 268435455 bytes plus its 5-byte header.
const (
	MinMQTTPacketSize = 1 << 10
	MaxMQTTPacketSize = 268435455 + 5
)

// AMQP tunes the AMQP listener.
type AMQP struct {
	FrameMax       uint32   `toml:"frame_max"`        // default 131072
	ChannelMax     uint16   `toml:"channel_max"`      // default 2047
	Heartbeat      Duration `toml:"heartbeat"`        // default 60s; "0s" disables
	MaxMessageSize ByteSize `toml:"max_message_size"` // default 128MiB
}

// User is a user account in the config file.
type User struct {
	Name string `toml:"name"`
	// Password in clear text, or PasswordHash as an argon2id PHC string
	// (tern hash-password prints one).
	Password     string   `toml:"password"`
	PasswordHash string   `toml:"password_hash"`
	VHosts       []string `toml:"vhosts"` // default ["/"]; "*" for all
	Tags         []string `toml:"tags"`
	LoopbackOnly bool     `toml:"loopback_only"`
}

// Default returns the embedded defaults.
func Default() Config {
	return Config{
		DataDir:                   "./tern-data",
		AMQPAddr:                  ":5672",
		MQTTAddr:                  ":1883",
		MQTTWSAddr:                ":15675",
		MQTTAllowAnonymous:        true,
		MQTTVHost:                 "/",
		MQTTQoS0Backlog:           1_000_000,
		MQTTConnectTimeout:        10,
		MQTTMaxPacketSize:         16 << 20,
		MQTTConnectRate:           20_000,
		MQTTConnectRatePerAddress: 1_000,
		HTTPAddr:                  ":15672",
		LogLevel:                  "info",
		LogFormat:                 "text",
		MemoryHighWatermark:       ByteSize(defaultWatermark()),
		DiskFreeLimit:             50_000_000,
		Fsync:                     "always",
		FsyncInterval:             Duration(200 * time.Millisecond),
		SegmentSize:               64 << 20,
		QueueMemoryLimit:          4 << 20,
		Security:                  defaultSecurity(),
		AMQP: AMQP{
			FrameMax:       131072,
			ChannelMax:     2047,
			Heartbeat:      Duration(60 * time.Second),
			MaxMessageSize: 128 << 20,
		},
	}
}

// defaultWatermark is 40% of physical memory, RabbitMQ's default ratio.
func defaultWatermark() int64 {
	raw, err := os.ReadFile("/proc/meminfo")
	if err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					return kb * 1024 * 4 / 10
				}
			}
		}
	}
	return 1 << 30
}

// Load builds the configuration from defaults, the TOML file named by
// --config (or TERN_CONFIG), the environment and the flags in args.
func Load(args []string, env func(string) (string, bool)) (Config, error) {
	cfg := Default()
	fs := flag.NewFlagSet("tern server", flag.ContinueOnError)
	configPath := fs.String("config", "", "TOML configuration file (env TERN_CONFIG)")
	dataDir := fs.String("data-dir", cfg.DataDir, "data directory (env TERN_DATA_DIR)")
	amqpAddr := fs.String("amqp-addr", cfg.AMQPAddr, `AMQP 0-9-1 listen address, "" to disable (env TERN_AMQP_ADDR)`)
	httpAddr := fs.String("http-addr", cfg.HTTPAddr, `HTTP address of the management API (/api/...), the console (/), /healthz and /metrics, "" to disable (env TERN_HTTP_ADDR)`)
	mqttAddr := fs.String("mqtt-addr", cfg.MQTTAddr, `MQTT 3.1.1/5.0 listen address, "" to disable (env TERN_MQTT_ADDR)`)
	mqttWSAddr := fs.String("mqtt-ws-addr", cfg.MQTTWSAddr, `MQTT-over-WebSocket listen address, "" to disable (env TERN_MQTT_WS_ADDR)`)
	logLevel := fs.String("log-level", cfg.LogLevel, "debug, info, warn or error (env TERN_LOG_LEVEL)")
	logFormat := fs.String("log-format", cfg.LogFormat, "text or json (env TERN_LOG_FORMAT)")
	pprof := fs.Bool("pprof", false, "serve /debug/pprof/ on the HTTP listener (env TERN_PPROF=true)")
	applySecurity := securityFlags(fs, &cfg)
	nodeID := fs.String("node-id", "", "this node's name in a cluster, e.g. n1 (env TERN_NODE_ID); see docs/clustering.md")
	clusterAddr := fs.String("cluster-addr", "", "cluster port's host:port; outgoing cluster connections leave from its host (env TERN_CLUSTER_ADDR)")
	peers := fs.String("peers", "", "every node of the cluster, this one included: name@host:port[/standby],… (env TERN_PEERS)")
	secretFile := fs.String("cluster-secret-file", "", "file holding the cluster's shared secret (env TERN_CLUSTER_SECRET_FILE, or the secret itself in TERN_CLUSTER_SECRET)")
	role := fs.String("role", "", "voter (default) or standby: a non-voting learner that serves no clients until promoted (env TERN_ROLE)")
	join := fs.Bool("join", false, "join a running cluster: bootstrap nothing, wait to be added with tern cluster add-node")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	// The flag package stops at the first non-flag word and ignores the
	// rest, so `tern server tern.toml --amqp-addr …` would silently run on
	// defaults.
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("config: unexpected argument %q (tern server takes only flags; a configuration file is --config FILE)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	path := *configPath
	if !set["config"] {
		if v, ok := env("TERN_CONFIG"); ok {
			path = v
		}
	}
	var md *toml.MetaData
	if path != "" {
		m, err := toml.DecodeFile(path, &cfg)
		md = &m
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		if undec := md.Undecoded(); len(undec) > 0 {
			return cfg, fmt.Errorf("config: unknown keys in %s: %v", path, undec)
		}
	}
	applySecurity(set, env, md)
	for _, o := range []struct {
		name string
		dst  *string
		val  *string
	}{
		{"data-dir", &cfg.DataDir, dataDir},
		{"amqp-addr", &cfg.AMQPAddr, amqpAddr},
		{"http-addr", &cfg.HTTPAddr, httpAddr},
		{"mqtt-addr", &cfg.MQTTAddr, mqttAddr},
		{"mqtt-ws-addr", &cfg.MQTTWSAddr, mqttWSAddr},
		{"log-level", &cfg.LogLevel, logLevel},
		{"log-format", &cfg.LogFormat, logFormat},
		{"node-id", &cfg.Cluster.NodeID, nodeID},
		{"cluster-addr", &cfg.Cluster.Addr, clusterAddr},
		{"role", &cfg.Cluster.Role, role},
	} {
		envName := "TERN_" + strings.ToUpper(strings.ReplaceAll(o.name, "-", "_"))
		if v, ok := env(envName); ok {
			*o.dst = v
		}
		if set[o.name] {
			*o.dst = *o.val
		}
	}
	if set["join"] {
		cfg.Cluster.Join = *join
	}
	if err := loadClusterLayers(&cfg.Cluster, env, set, *peers, *secretFile); err != nil {
		return cfg, err
	}
	if v, ok := env("TERN_PPROF"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return cfg, fmt.Errorf("config: TERN_PPROF %q is not a boolean (1, true, 0 or false)", v)
		}
		cfg.Pprof = b
	}
	if set["pprof"] {
		cfg.Pprof = *pprof
	}
	if v, ok := env("TERN_FSYNC"); ok {
		cfg.Fsync = v
	}
	if v, ok := env("TERN_DISK_FREE_LIMIT"); ok {
		if err := cfg.DiskFreeLimit.UnmarshalText([]byte(v)); err != nil {
			return cfg, fmt.Errorf("config: TERN_DISK_FREE_LIMIT: %w", err)
		}
	}
	if v, ok := env("TERN_MEMORY_HIGH_WATERMARK"); ok {
		if err := cfg.MemoryHighWatermark.UnmarshalText([]byte(v)); err != nil {
			return cfg, fmt.Errorf("config: TERN_MEMORY_HIGH_WATERMARK: %w", err)
		}
	}
	return cfg, cfg.Validate()
}

// Validate checks values that would otherwise fail later and obscurely.
func (c Config) Validate() error {
	var errs []error
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("config: log_level %q is not debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("config: log_format %q is not text or json", c.LogFormat))
	}
	if c.Fsync != "always" && c.Fsync != "interval" {
		errs = append(errs, fmt.Errorf("config: fsync %q is not always or interval", c.Fsync))
	}
	if c.AMQP.FrameMax != 0 && c.AMQP.FrameMax < 4096 {
		errs = append(errs, fmt.Errorf("config: amqp.frame_max %d is below the protocol minimum 4096", c.AMQP.FrameMax))
	}
	if c.SegmentSize < MinSegmentSize || c.SegmentSize > MaxSegmentSize {
		errs = append(errs, fmt.Errorf("config: segment_size %d is outside %d (1MiB) … %d (1GiB): smaller segments mean a file per few messages, larger ones overflow 32-bit offsets",
			c.SegmentSize, MinSegmentSize, MaxSegmentSize))
	}
	if c.MQTTMaxKeepAlive < 0 || c.MQTTMaxKeepAlive > 65535 {
		errs = append(errs, fmt.Errorf("config: mqtt_max_keepalive %d is outside 0 (no maximum) … 65535 seconds, the protocol's range", c.MQTTMaxKeepAlive))
	}
	if c.MQTTMaxPacketSize < MinMQTTPacketSize || c.MQTTMaxPacketSize > MaxMQTTPacketSize {
		errs = append(errs, fmt.Errorf("config: mqtt_max_packet_size %d is outside %d (1KiB) … %d (256MiB, the protocol's largest packet)",
			c.MQTTMaxPacketSize, MinMQTTPacketSize, MaxMQTTPacketSize))
	}
	if c.MQTTConnectTimeout < 1 {
		errs = append(errs, fmt.Errorf("config: mqtt_connect_timeout %d: at least 1 second", c.MQTTConnectTimeout))
	}
	if c.MQTTConnectRate < 0 || c.MQTTConnectRatePerAddress < 0 {
		errs = append(errs, fmt.Errorf("config: mqtt_connect_rate %g and mqtt_connect_rate_per_address %g: 0 (no limit) or more", c.MQTTConnectRate, c.MQTTConnectRatePerAddress))
	}
	errs = append(errs, c.validateSecurity()...)
	vhosts := c.vhostSet()
	if !vhosts[c.MQTTVHost] {
		errs = append(errs, fmt.Errorf("config: mqtt_vhost %q is not a vhost (add it to vhosts)", c.MQTTVHost))
	}
	for _, l := range c.Limits {
		if err := l.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("config: %w", err))
		} else if !vhosts[l.VHost] {
			errs = append(errs, fmt.Errorf("config: a limit names vhost %q, which is not a vhost (add it to vhosts)", l.VHost))
		}
	}
	seen := map[string]bool{}
	for _, u := range c.Users {
		if u.Name == "" {
			errs = append(errs, errors.New("config: a user has no name"))
		}
		if seen[u.Name] {
			errs = append(errs, fmt.Errorf("config: user %q is defined twice", u.Name))
		}
		seen[u.Name] = true
		switch {
		case u.Password == "" && u.PasswordHash == "":
			errs = append(errs, fmt.Errorf("config: user %q has neither password nor password_hash", u.Name))
		case u.Password != "" && u.PasswordHash != "":
			errs = append(errs, fmt.Errorf("config: user %q has both password and password_hash; keep one", u.Name))
		case u.PasswordHash != "":
			if err := auth.CheckHash(u.PasswordHash); err != nil {
				errs = append(errs, fmt.Errorf("config: user %q: password_hash: %w", u.Name, err))
			}
		}
		for _, v := range u.VHosts {
			if v != "*" && !vhosts[v] {
				errs = append(errs, fmt.Errorf("config: user %q names vhost %q, which is not a vhost (add it to vhosts)", u.Name, v))
			}
		}
	}
	errs = append(errs, c.Cluster.validate()...)
	return errors.Join(errs...)
}

// Segment sizes Validate accepts.
const (
	MinSegmentSize = 1 << 20
	MaxSegmentSize = 1 << 30
)

// vhostSet is "/" and the configured vhosts.
func (c Config) vhostSet() map[string]bool {
	set := map[string]bool{"/": true}
	for _, v := range c.VHosts {
		set[v] = true
	}
	return set
}

// Warnings are settings that are valid but probably not what was meant;
// the server logs them at start-up.
func (c Config) Warnings() []string {
	var w []string
	if sw := c.Cluster.secretFileWarning(); sw != "" {
		w = append(w, sw)
	}
	if len(c.Users) == 0 {
		return w
	}
	hasGuest := false
	for _, u := range c.Users {
		hasGuest = hasGuest || u.Name == "guest"
	}
	if !hasGuest {
		msg := "users are configured, so the default guest/guest user does not exist"
		if c.MQTTAllowAnonymous && c.MQTTAddr+c.MQTTWSAddr != "" {
			msg += "; MQTT clients without a user name (mqtt_allow_anonymous) log in as guest and will be refused: define a guest user or set mqtt_allow_anonymous = false"
		}
		w = append(w, msg)
	}
	return w
}

// Duration is a time.Duration written as "60s" in TOML.
type Duration time.Duration

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ByteSize is a size in bytes, written as a number or with a unit suffix
// ("512MiB", "2GB", "1048576") in TOML.
type ByteSize int64

// UnmarshalText parses a size with an optional KB/MB/GB (powers of 1000)
// or KiB/MiB/GiB (powers of 1024) suffix.
func (b *ByteSize) UnmarshalText(t []byte) error {
	s := strings.TrimSpace(string(t))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("invalid size %q", string(t))
	}
	*b = ByteSize(n * mult)
	return nil
}

// UnmarshalTOML accepts a bare integer as well as a string.
func (b *ByteSize) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		*b = ByteSize(v)
		return nil
	case string:
		return b.UnmarshalText([]byte(v))
	}
	return fmt.Errorf("invalid size %v", v)
}
