package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
)

// Where a user name is taken from in a client certificate (RabbitMQ's
// ssl_cert_login_from).
const (
	FromCommonName = "common_name"
	FromSAN        = "subject_alternative_name"
)

// SAN types for FromSAN (RabbitMQ's ssl_cert_login_san_type).
const (
	SANDNS   = "dns"
	SANEmail = "email"
	SANURI   = "uri"
	SANIP    = "ip"
)

// Naming picks a user name out of a verified client certificate.
type Naming struct {
	From    string // common_name (default) or subject_alternative_name
	SANType string // dns (default), email, uri or ip
	// SANIndex picks among several SANs of SANType, from 0
	// (RabbitMQ's ssl_cert_login_san_index).
	SANIndex int
}

// Check reports a setting Name cannot honour.
func (n Naming) Check() error {
	switch n.From {
	case "", FromCommonName, FromSAN:
	default:
		return fmt.Errorf("cert_login_from %q is not common_name or subject_alternative_name", n.From)
	}
	switch n.SANType {
	case "", SANDNS, SANEmail, SANURI, SANIP:
	default:
		return fmt.Errorf("cert_login_san_type %q is not dns, email, uri or ip", n.SANType)
	}
	if n.SANIndex < 0 {
		return fmt.Errorf("cert_login_san_index %d is negative", n.SANIndex)
	}
	return nil
}

// Name returns the user name the certificate carries.
func (n Naming) Name(c *x509.Certificate) (string, error) {
	if n.From != FromSAN {
		if c.Subject.CommonName == "" {
			return "", errors.New("certs: the client certificate has no subject common name")
		}
		return c.Subject.CommonName, nil
	}
	var names []string
	switch n.SANType {
	case "", SANDNS:
		names = c.DNSNames
	case SANEmail:
		names = c.EmailAddresses
	case SANURI:
		for _, u := range c.URIs {
			names = append(names, u.String())
		}
	case SANIP:
		for _, ip := range c.IPAddresses {
			names = append(names, ip.String())
		}
	}
	if n.SANIndex >= len(names) {
		return "", fmt.Errorf("certs: the client certificate has no %s subject alternative name at index %d", n.SANType, n.SANIndex)
	}
	return names[n.SANIndex], nil
}

// PeerCertificate returns the verified client certificate of a connection
// (a *tls.Conn, or anything with its ConnectionState method, such as a
// WebSocket over TLS) after its handshake, or nil when there is none.
func PeerCertificate(nc net.Conn) *x509.Certificate {
	s, ok := nc.(interface{ ConnectionState() tls.ConnectionState })
	if !ok {
		return nil
	}
	cs := s.ConnectionState()
	if len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return nil
	}
	return cs.PeerCertificates[0]
}
