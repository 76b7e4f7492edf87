package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Client certificate policies (Options.ClientAuth).
const (
	ClientAuthNone     = "none"     // no certificate asked for
	ClientAuthOptional = "optional" // asked for; verified against the CA when given
	ClientAuthRequired = "required" // a certificate the CA verifies is required
)

// Options say where the TLS material lives and how clients are checked.
type Options struct {
	CertFile, KeyFile string // PEM server certificate (chain) and private key
	// CAFile is a PEM bundle of the CAs that sign client certificates;
	// required unless ClientAuth is none.
	CAFile     string
	ClientAuth string // none (default), optional or required
	MinVersion uint16 // tls.VersionTLS12 (default) or tls.VersionTLS13
	Log        *slog.Logger
}

// material is one generation of loaded files and the config built on them.
type material struct {
	cfg *tls.Config
	// client presents the same certificate when dialing and verifies the
	// server against the CA file (a cluster node dialing its peers).
	client *tls.Config
	leaf   *x509.Certificate
	stamp  string // the files' sizes and modification times when read
}

// Reloader hands the current certificate to every handshake and replaces
// it when the files change. Connections already open keep the certificate
// they shook hands with: TLS never looks at it again.
type Reloader struct {
	opts Options
	log  *slog.Logger
	cur  atomic.Pointer[material]

	mu        sync.Mutex // serialises reloads
	failStamp string     // the stamp of files that failed to load, logged once
}

// New loads the files; an error names the file that is missing or
// malformed.
func New(o Options) (*Reloader, error) {
	if o.ClientAuth == "" {
		o.ClientAuth = ClientAuthNone
	}
	if o.MinVersion == 0 {
		o.MinVersion = tls.VersionTLS12
	}
	if o.MinVersion < tls.VersionTLS12 {
		return nil, errors.New("certs: TLS versions before 1.2 are not offered")
	}
	switch o.ClientAuth {
	case ClientAuthNone, ClientAuthOptional, ClientAuthRequired:
	default:
		return nil, fmt.Errorf("certs: client_auth %q is not none, optional or required", o.ClientAuth)
	}
	if o.ClientAuth != ClientAuthNone && o.CAFile == "" {
		return nil, fmt.Errorf("certs: client_auth %q needs ca_file (the CA that signs client certificates)", o.ClientAuth)
	}
	r := &Reloader{opts: o, log: o.Log}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	m, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cur.Store(m)
	return r, nil
}

// ServerConfig is the tls.Config to give a listener: each handshake gets
// the configuration of the material current at that moment.
func (r *Reloader) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: r.opts.MinVersion,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return r.cur.Load().cfg, nil
		},
	}
}

// ClientConfig is the configuration for dialing with the material
// current at this moment: the same certificate as a client certificate,
// and the CA file (when set) as the roots that verify the server. Each
// dial should call it again, so a reload applies to the next connection;
// the result is shared: Clone it before changing it (ServerName).
func (r *Reloader) ClientConfig() *tls.Config { return r.cur.Load().client }

// Serial is the serial number of the certificate handshakes get now.
func (r *Reloader) Serial() *big.Int { return r.cur.Load().leaf.SerialNumber }

// Reload reads the files again (SIGHUP). On error the previous material
// stays in use.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.load()
	if err != nil {
		return err
	}
	old := r.cur.Swap(m)
	r.failStamp = ""
	if old.leaf.SerialNumber.Cmp(m.leaf.SerialNumber) != 0 {
		r.log.Info("TLS certificate reloaded", "serial", m.leaf.SerialNumber.Text(16), "subject", m.leaf.Subject.String(), "not_after", m.leaf.NotAfter)
	}
	return nil
}

// Watch polls the files' sizes and modification times every interval and
// reloads when they change, until ctx is done. A pair caught half-written
// fails to load and is retried when the files change again; the failure is
// logged once per change, and handshakes keep the previous certificate.
func (r *Reloader) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		stamp := r.stamp()
		r.mu.Lock()
		unchanged := stamp == r.cur.Load().stamp || stamp == r.failStamp
		r.mu.Unlock()
		if unchanged {
			continue
		}
		if err := r.Reload(); err != nil {
			r.mu.Lock()
			r.failStamp = stamp
			r.mu.Unlock()
			r.log.Error("TLS files changed but cannot be loaded; still serving the previous certificate", "err", err)
		}
	}
}

// stamp summarises the files' sizes and modification times.
func (r *Reloader) stamp() string {
	s := ""
	for _, f := range []string{r.opts.CertFile, r.opts.KeyFile, r.opts.CAFile} {
		if f == "" {
			continue
		}
		if fi, err := os.Stat(f); err == nil {
			s += fmt.Sprintf("%d/%d;", fi.Size(), fi.ModTime().UnixNano())
		} else {
			s += "missing;"
		}
	}
	return s
}

// load reads and checks the files and builds the handshake configuration.
func (r *Reloader) load() (*material, error) {
	o := r.opts
	stamp := r.stamp() // before reading: a change while reading is seen next time
	certPEM, err := os.ReadFile(o.CertFile)
	if err != nil {
		return nil, fmt.Errorf("certs: cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("certs: key_file: %w", err)
	}
	if _, err := readCert(o.CertFile); err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certs: key_file %s does not match cert_file %s or is malformed: %w", o.KeyFile, o.CertFile, err)
	}
	cfg := &tls.Config{
		MinVersion:   o.MinVersion,
		Certificates: []tls.Certificate{pair},
	}
	client := &tls.Config{
		MinVersion:   o.MinVersion,
		Certificates: []tls.Certificate{pair},
	}
	switch o.ClientAuth {
	case ClientAuthOptional:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case ClientAuthRequired:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if o.CAFile != "" {
		raw, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("certs: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(raw) {
			return nil, fmt.Errorf("certs: ca_file %s holds no PEM certificate", o.CAFile)
		}
		cfg.ClientCAs, client.RootCAs = pool, pool
	}
	return &material{cfg: cfg, client: client, leaf: pair.Leaf, stamp: stamp}, nil
}
