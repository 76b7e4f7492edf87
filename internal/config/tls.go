package config

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Security holds the TLS listeners and HTTP API access settings; it is
// embedded in Config, so its keys sit at the top level of the TOML file
// (and the [tls] table).
type Security struct {
	// AMQPSAddr is the AMQP 0-9-1 over TLS listen address. Default ":5671".
	// Every TLS listener is on only when tls.cert_file is set: without a
	// certificate the defaults leave them off; naming one explicitly
	// without a certificate is an error.
	AMQPSAddr string `toml:"amqps_addr"`
	// MQTTSAddr is the MQTT over TLS listen address. Default ":8883".
	MQTTSAddr string `toml:"mqtts_addr"`
	// MQTTWSSAddr is MQTT over secure WebSocket. Default ":15676", RabbitMQ's.
	MQTTWSSAddr string `toml:"mqtt_wss_addr"`
	// HTTPSAddr serves the HTTP API over TLS. Default ":15671", RabbitMQ's.
	HTTPSAddr string `toml:"https_addr"`
	// HTTPOpenPaths are the HTTP paths served without credentials; only
	// "/healthz" and "/metrics" may be listed. Default both.
	HTTPOpenPaths []string `toml:"http_open_paths"`

	TLS TLS `toml:"tls"`

	// explicitTLSAddrs names TLS address settings given by the operator
	// (not defaults), which must not be silently off for lack of a
	// certificate.
	explicitTLSAddrs []string
}

// TLS is the [tls] table: one certificate for every TLS listener.
type TLS struct {
	CertFile string `toml:"cert_file"` // PEM certificate (chain); none: TLS listeners off
	KeyFile  string `toml:"key_file"`  // PEM private key
	// CAFile verifies client certificates (mTLS).
	CAFile string `toml:"ca_file"`
	// ClientAuth is none (default), optional (verified when given) or
	// required.
	ClientAuth string `toml:"client_auth"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `toml:"min_version"`
	// ReloadInterval is how often the files' modification times are
	// checked; "0s" reloads on SIGHUP only. Default 10s.
	ReloadInterval Duration `toml:"reload_interval"`
	// CertLoginFrom names the user of a client certificate, for AMQP's
	// EXTERNAL and MQTT certificate login: common_name (default) or
	// subject_alternative_name (RabbitMQ's ssl_cert_login_from), with
	// CertLoginSANType dns (default), email, uri or ip and CertLoginSANIndex.
	CertLoginFrom     string `toml:"cert_login_from"`
	CertLoginSANType  string `toml:"cert_login_san_type"`
	CertLoginSANIndex int    `toml:"cert_login_san_index"`
	// MQTTCertLogin lets an MQTT client that sends no user name log in as
	// the user its verified certificate names (RabbitMQ's
	// mqtt.ssl_cert_login). Default false.
	MQTTCertLogin bool `toml:"mqtt_cert_login"`
}

// defaultSecurity is the embedded default of Security.
func defaultSecurity() Security {
	return Security{
		AMQPSAddr:     ":5671",
		MQTTSAddr:     ":8883",
		MQTTWSSAddr:   ":15676",
		HTTPSAddr:     ":15671",
		HTTPOpenPaths: []string{"/healthz", "/metrics"},
		TLS:           TLS{ClientAuth: "none", MinVersion: "1.2", ReloadInterval: Duration(10 * time.Second), CertLoginFrom: "common_name", CertLoginSANType: "dns"},
	}
}

// TLSEnabled reports whether a certificate is configured, which turns the
// TLS listeners on.
func (c Config) TLSEnabled() bool { return c.TLS.CertFile != "" }

// securityFlags registers the TLS flags on fs and returns a function that
// applies the environment and the flags given, after the TOML file.
func securityFlags(fs *flag.FlagSet, cfg *Config) func(set map[string]bool, env func(string) (string, bool), md *toml.MetaData) {
	type opt struct {
		name string
		dst  *string
		val  *string
		toml []string
	}
	var opts []opt
	add := func(name string, dst *string, usage string, key ...string) {
		opts = append(opts, opt{name, dst, fs.String(name, *dst, usage), key})
	}
	add("amqps-addr", &cfg.AMQPSAddr, `AMQP 0-9-1 over TLS listen address, on when tls cert is set; "" to disable (env TERN_AMQPS_ADDR)`, "amqps_addr")
	add("mqtts-addr", &cfg.MQTTSAddr, `MQTT over TLS listen address, on when tls cert is set; "" to disable (env TERN_MQTTS_ADDR)`, "mqtts_addr")
	add("mqtt-wss-addr", &cfg.MQTTWSSAddr, `MQTT over secure WebSocket listen address, on when tls cert is set; "" to disable (env TERN_MQTT_WSS_ADDR)`, "mqtt_wss_addr")
	add("https-addr", &cfg.HTTPSAddr, `HTTPS address for the HTTP API, on when tls cert is set; "" to disable (env TERN_HTTPS_ADDR)`, "https_addr")
	add("tls-cert-file", &cfg.TLS.CertFile, "PEM server certificate for the TLS listeners (env TERN_TLS_CERT_FILE)")
	add("tls-key-file", &cfg.TLS.KeyFile, "PEM private key of --tls-cert-file (env TERN_TLS_KEY_FILE)")
	add("tls-ca-file", &cfg.TLS.CAFile, "PEM CA bundle verifying client certificates (env TERN_TLS_CA_FILE)")
	add("tls-client-auth", &cfg.TLS.ClientAuth, "client certificates: none, optional or required (env TERN_TLS_CLIENT_AUTH)")
	return func(set map[string]bool, env func(string) (string, bool), md *toml.MetaData) {
		for _, o := range opts {
			explicit := false
			for _, k := range o.toml {
				explicit = explicit || (md != nil && md.IsDefined(k))
			}
			envName := "TERN_" + strings.ToUpper(strings.ReplaceAll(o.name, "-", "_"))
			if v, ok := env(envName); ok {
				*o.dst, explicit = v, true
			}
			if set[o.name] {
				*o.dst, explicit = *o.val, true
			}
			if explicit && len(o.toml) > 0 && *o.dst != "" {
				cfg.explicitTLSAddrs = append(cfg.explicitTLSAddrs, o.toml[0])
			}
		}
	}
}

// validateSecurity checks the TLS and HTTP access settings.
func (c Config) validateSecurity() []error {
	var errs []error
	t := c.TLS
	if len(c.explicitTLSAddrs) > 0 && t.CertFile == "" {
		errs = append(errs, fmt.Errorf("config: %s is set but tls.cert_file is not: a TLS listener needs a certificate (tern cert makes one)", strings.Join(c.explicitTLSAddrs, ", ")))
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, errors.New("config: tls.cert_file and tls.key_file go together"))
	}
	switch t.ClientAuth {
	case "", "none":
	case "optional", "required":
		if t.CAFile == "" {
			errs = append(errs, fmt.Errorf("config: tls.client_auth %q needs tls.ca_file (the CA that signs client certificates)", t.ClientAuth))
		}
	default:
		errs = append(errs, fmt.Errorf("config: tls.client_auth %q is not none, optional or required", t.ClientAuth))
	}
	switch t.MinVersion {
	case "", "1.2", "1.3":
	default:
		errs = append(errs, fmt.Errorf("config: tls.min_version %q is not 1.2 or 1.3 (older versions are not offered)", t.MinVersion))
	}
	if t.ReloadInterval < 0 {
		errs = append(errs, errors.New("config: tls.reload_interval is negative"))
	}
	switch t.CertLoginFrom {
	case "", "common_name", "subject_alternative_name":
	default:
		errs = append(errs, fmt.Errorf("config: tls.cert_login_from %q is not common_name or subject_alternative_name", t.CertLoginFrom))
	}
	switch t.CertLoginSANType {
	case "", "dns", "email", "uri", "ip":
	default:
		errs = append(errs, fmt.Errorf("config: tls.cert_login_san_type %q is not dns, email, uri or ip", t.CertLoginSANType))
	}
	if t.CertLoginSANIndex < 0 {
		errs = append(errs, errors.New("config: tls.cert_login_san_index is negative"))
	}
	for _, p := range c.HTTPOpenPaths {
		if p != "/healthz" && p != "/metrics" {
			errs = append(errs, fmt.Errorf("config: http_open_paths may list /healthz and /metrics, not %q", p))
		}
	}
	return errs
}
