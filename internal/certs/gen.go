package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"
)

// Issued is a certificate with its private key.
type Issued struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// Request describes a certificate to issue. Every certificate is ECDSA
// P-256, with a random 128-bit serial number.
type Request struct {
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	Emails     []string // client certificates: SAN e-mail addresses
	// Client makes a client (TLS client authentication) certificate;
	// otherwise a server one.
	Client   bool
	Validity time.Duration // default 365 days
	// Now is the start of validity (minus an hour of clock skew); zero is
	// the current time.
	Now time.Time
}

func (r Request) window() (time.Time, time.Time) {
	now := r.Now
	if now.IsZero() {
		now = time.Now()
	}
	v := r.Validity
	if v <= 0 {
		v = 365 * 24 * time.Hour
	}
	return now.Add(-time.Hour), now.Add(v)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

// NewCA makes a self-signed certificate authority.
func NewCA(r Request) (Issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Issued{}, err
	}
	sn, err := serial()
	if err != nil {
		return Issued{}, err
	}
	from, to := r.window()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: r.CommonName, Organization: []string{"Tern"}},
		NotBefore:             from,
		NotAfter:              to,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Issued{}, fmt.Errorf("certs: creating the CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	return Issued{Cert: cert, Key: key}, err
}

// Issue signs a server or client certificate with ca.
func Issue(ca Issued, r Request) (Issued, error) {
	if r.CommonName == "" && len(r.DNSNames) == 0 && len(r.IPs) == 0 && len(r.Emails) == 0 {
		return Issued{}, errors.New("certs: a certificate needs a common name, a DNS name or an IP address")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Issued{}, err
	}
	sn, err := serial()
	if err != nil {
		return Issued{}, err
	}
	from, to := r.window()
	usage := x509.ExtKeyUsageServerAuth
	if r.Client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber:   sn,
		Subject:        pkix.Name{CommonName: r.CommonName, Organization: []string{"Tern"}},
		NotBefore:      from,
		NotAfter:       to,
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{usage},
		DNSNames:       r.DNSNames,
		IPAddresses:    r.IPs,
		EmailAddresses: r.Emails,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return Issued{}, fmt.Errorf("certs: issuing %q: %w", r.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	return Issued{Cert: cert, Key: key}, err
}

// CertPEM is the certificate in PEM.
func (i Issued) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: i.Cert.Raw})
}

// KeyPEM is the private key in PKCS #8 PEM.
func (i Issued) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(i.Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// WriteFiles writes the certificate (mode 0644) and key (mode 0600). The
// key is written first, each through a temporary file renamed into place,
// so a Reloader polling the pair never reads half a file.
func (i Issued) WriteFiles(certFile, keyFile string) error {
	k, err := i.KeyPEM()
	if err != nil {
		return err
	}
	if err := writeAtomic(keyFile, k, 0o600); err != nil {
		return err
	}
	return writeAtomic(certFile, i.CertPEM(), 0o644)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err := os.Chmod(tmp, mode); err != nil { // WriteFile keeps an existing file's mode
		return fmt.Errorf("certs: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}

// LoadIssued reads a certificate and its key written by WriteFiles (the CA,
// to issue more certificates with it).
func LoadIssued(certFile, keyFile string) (Issued, error) {
	cert, err := readCert(certFile)
	if err != nil {
		return Issued{}, err
	}
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		return Issued{}, fmt.Errorf("certs: %w", err)
	}
	b, _ := pem.Decode(raw)
	if b == nil {
		return Issued{}, fmt.Errorf("certs: %s: no PEM private key", keyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		if ek, err2 := x509.ParseECPrivateKey(b.Bytes); err2 == nil {
			return Issued{Cert: cert, Key: ek}, nil
		}
		return Issued{}, fmt.Errorf("certs: %s: %w", keyFile, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return Issued{}, fmt.Errorf("certs: %s: not an ECDSA key", keyFile)
	}
	return Issued{Cert: cert, Key: ek}, nil
}

// readCert parses the first certificate of a PEM file.
func readCert(path string) (*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	b, _ := pem.Decode(raw)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("certs: %s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", path, err)
	}
	return c, nil
}
