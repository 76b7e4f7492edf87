package amqp

import (
	"crypto/x509"
	"fmt"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/certs"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// mechanisms are the SASL mechanisms offered in connection.start: EXTERNAL
// only to a client that presented a certificate the CA verified (RabbitMQ's
// rabbitmq_auth_mechanism_ssl), when Config.CertName is set.
func (c *connection) mechanisms() string {
	if c.peerCert() != nil {
		return "PLAIN AMQPLAIN EXTERNAL"
	}
	return "PLAIN AMQPLAIN"
}

// peerCert is the connection's verified client certificate, or nil when
// there is none or EXTERNAL is off. The TLS handshake is over by the time
// the protocol header has been read.
func (c *connection) peerCert() *x509.Certificate {
	if c.srv.cfg.CertName == nil {
		return nil
	}
	return certs.PeerCertificate(c.nc)
}

// login authenticates start-ok: EXTERNAL by the client certificate's user
// name (the response, an optional authorisation identity, is ignored as
// RabbitMQ does), PLAIN and AMQPLAIN by password.
func (c *connection) login(startOk *amqp091.ConnectionStartOk) (auth.User, error) {
	if startOk.Mechanism == "EXTERNAL" {
		cert := c.peerCert()
		if cert == nil {
			return auth.User{}, c.refuse(startOk, "EXTERNAL login needs a verified client certificate")
		}
		name, err := c.srv.cfg.CertName(cert)
		if err != nil {
			c.log.Warn("login refused", "mechanism", "EXTERNAL", "subject", cert.Subject.String(), "err", err)
			return auth.User{}, c.refuse(startOk, "EXTERNAL login refused: "+err.Error())
		}
		u, err := c.srv.users.AuthenticateCert(name, c.nc.RemoteAddr())
		if err != nil {
			c.log.Warn("login refused", "user", name, "mechanism", "EXTERNAL", "err", err)
			return auth.User{}, c.refuse(startOk, "Login was refused using authentication mechanism EXTERNAL. For details see the broker logfile.")
		}
		return u, nil
	}
	user, pass, err := saslCredentials(startOk.Mechanism, startOk.Response)
	if err != nil {
		return auth.User{}, c.refuse(startOk, err.Error())
	}
	u, err := c.srv.users.Authenticate(user, pass, c.nc.RemoteAddr())
	if err != nil {
		c.log.Warn("login refused", "user", user, "mechanism", startOk.Mechanism, "err", err)
		return auth.User{}, c.refuse(startOk, fmt.Sprintf("Login was refused using authentication mechanism %s. For details see the broker logfile.", startOk.Mechanism))
	}
	return u, nil
}
