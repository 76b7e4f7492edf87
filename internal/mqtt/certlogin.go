package mqtt

import (
	"crypto/tls"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/certs"
)

// certLogin logs in a CONNECT without a user name as the user its verified
// TLS client certificate names, when Config.CertName is set (RabbitMQ's
// mqtt.ssl_cert_login: credentials in CONNECT take priority, then the
// certificate, then anonymous). ok is false when it does not apply.
func (c *conn) certLogin() (u auth.User, ok bool, err error) {
	if c.srv.cfg.CertName == nil {
		return auth.User{}, false, nil
	}
	cert := certs.PeerCertificate(c.nc)
	if cert == nil {
		return auth.User{}, false, nil
	}
	name, err := c.srv.cfg.CertName(cert)
	if err != nil {
		return auth.User{}, true, err
	}
	u, err = c.srv.users.AuthenticateCert(name, c.nc.RemoteAddr())
	return u, true, err
}

// ConnectionState is the TLS state of an MQTT-over-secure-WebSocket
// connection (the zero value over plain HTTP), so certificate login works
// over WSS as over MQTTS.
func (c *wsConn) ConnectionState() tls.ConnectionState {
	if c.tls == nil {
		return tls.ConnectionState{}
	}
	return *c.tls
}
