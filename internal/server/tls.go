package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net"

	"github.com/tern-broker/tern/internal/certs"
)

// tlsListeners are the TLS listeners and the certificate they share. They
// exist only when a certificate is configured (config.TLSEnabled); each
// protocol server accepts on its plain and TLS listener together
// (mergeListeners), so connections over TLS are the same connections.
type tlsListeners struct {
	certs                 *certs.Reloader
	amqps, mqtts, wss, hs net.Listener
	// cluster is the cluster port's certificate ([cluster.tls],
	// cluster.go), reloaded with the client listeners' one.
	cluster *certs.Reloader
}

// loadTLS loads the certificate, key and CA files when TLS is on: before
// recovery, so a bad file stops start-up at once, with its name.
func (s *Server) loadTLS() error {
	cfg := s.cfg
	if !cfg.TLSEnabled() {
		return nil
	}
	minVersion := uint16(tls.VersionTLS12)
	if cfg.TLS.MinVersion == "1.3" {
		minVersion = tls.VersionTLS13
	}
	r, err := certs.New(certs.Options{
		CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile, CAFile: cfg.TLS.CAFile,
		ClientAuth: cfg.TLS.ClientAuth, MinVersion: minVersion, Log: s.log.With("component", "tls"),
	})
	if err != nil {
		return fmt.Errorf("server: TLS: %w", err)
	}
	s.tls.certs = r
	return nil
}

// bindTLSClients binds the enabled AMQPS, MQTTS and MQTT-over-WSS
// listeners: with the plain client listeners (bindMQTT), so a standby
// binds them when promoted.
func (s *Server) bindTLSClients() error {
	if s.tls.certs == nil {
		s.log.Info("TLS listeners off: no tls.cert_file configured (docs/security.md)")
		return nil
	}
	return s.bindTLS([]tlsListener{
		{s.cfg.AMQPSAddr, "AMQP 0-9-1 over TLS", &s.tls.amqps},
		{s.cfg.MQTTSAddr, "MQTT over TLS", &s.tls.mqtts},
		{s.cfg.MQTTWSSAddr, "MQTT over secure WebSocket", &s.tls.wss},
	})
}

// bindHTTPS binds the HTTPS listener when TLS is on: with the HTTP one, on
// a standby too.
func (s *Server) bindHTTPS() error {
	if s.tls.certs == nil {
		return nil
	}
	return s.bindTLS([]tlsListener{{s.cfg.HTTPSAddr, "HTTPS", &s.tls.hs}})
}

type tlsListener struct {
	addr, what string
	dst        *net.Listener
}

func (s *Server) bindTLS(ls []tlsListener) error {
	tc := s.tls.certs.ServerConfig()
	for _, l := range ls {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fmt.Errorf("server: %s listener: %w", l.what, err)
		}
		s.lnMu.Lock()
		*l.dst = tls.NewListener(ln, tc)
		s.lnMu.Unlock()
		s.log.Info(l.what+" listening", "addr", ln.Addr().String(), "client_auth", s.cfg.TLS.ClientAuth)
	}
	return nil
}

func (t *tlsListeners) close() {
	for _, ln := range []net.Listener{t.amqps, t.mqtts, t.wss, t.hs} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// certName maps a verified client certificate to a user name, as
// tls.cert_login_from says.
func (s *Server) certName() func(*x509.Certificate) (string, error) {
	n := certs.Naming{From: s.cfg.TLS.CertLoginFrom, SANType: s.cfg.TLS.CertLoginSANType, SANIndex: s.cfg.TLS.CertLoginSANIndex}
	return n.Name
}

// mqttCertName is certName when MQTT certificate login is on, else nil.
func (s *Server) mqttCertName() func(*x509.Certificate) (string, error) {
	if !s.cfg.TLS.MQTTCertLogin {
		return nil
	}
	return s.certName()
}

// ReloadTLS reads the certificate, key and CA files again (on SIGHUP):
// the client listeners' ([tls]) and the cluster port's ([cluster.tls]).
// Open connections keep the certificate they shook hands with; on error
// the previous files stay in use (each set apart: a broken cluster pair
// does not keep the client listeners' from reloading).
func (s *Server) ReloadTLS() error {
	if s.tls.certs == nil && s.tls.cluster == nil {
		return errors.New("server: TLS is off (no tls.cert_file, no cluster.tls.cert_file): nothing to reload")
	}
	var errs []error
	if s.tls.certs != nil {
		errs = append(errs, s.tls.certs.Reload())
	}
	if s.tls.cluster != nil {
		if err := s.tls.cluster.Reload(); err != nil {
			errs = append(errs, fmt.Errorf("cluster port: %w", err))
		}
	}
	return errors.Join(errs...)
}

// ClusterTLSSerial is the serial number of the certificate the cluster
// port presents now, or nil without cluster TLS.
func (s *Server) ClusterTLSSerial() *big.Int {
	if s.tls.cluster == nil {
		return nil
	}
	return s.tls.cluster.Serial()
}

// TLSSerial is the serial number of the certificate new TLS connections
// get, or nil when TLS is off.
func (s *Server) TLSSerial() *big.Int {
	if s.tls.certs == nil {
		return nil
	}
	return s.tls.certs.Serial()
}

func (s *Server) addrOf(ln *net.Listener) net.Addr {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	if *ln == nil {
		return nil
	}
	return (*ln).Addr()
}

// AMQPSAddr returns the bound AMQP-over-TLS address, or nil when off.
func (s *Server) AMQPSAddr() net.Addr { return s.addrOf(&s.tls.amqps) }

// MQTTSAddr returns the bound MQTT-over-TLS address, or nil when off.
func (s *Server) MQTTSAddr() net.Addr { return s.addrOf(&s.tls.mqtts) }

// MQTTWSSAddr returns the bound MQTT-over-secure-WebSocket address, or nil.
func (s *Server) MQTTWSSAddr() net.Addr { return s.addrOf(&s.tls.wss) }

// HTTPSAddr returns the bound HTTPS address, or nil when off.
func (s *Server) HTTPSAddr() net.Addr { return s.addrOf(&s.tls.hs) }
