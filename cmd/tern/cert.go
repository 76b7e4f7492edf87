package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tern-broker/tern/internal/certs"
)

const certUsage = `tern cert — make a private CA and TLS certificates (ECDSA P-256)

Usage:
  tern cert ca     [--dir DIR] [--cn NAME] [--days N] [--force]
  tern cert server [--dir DIR] [--dns NAMES] [--ip ADDRS] [--cn NAME] [--name FILE] [--days N]
  tern cert client --cn USER [--dir DIR] [--dns NAMES] [--email ADDRS] [--name FILE] [--days N]

ca writes DIR/ca.pem and DIR/ca-key.pem (refusing to replace them without --force);
server and client sign with them and write DIR/<name>.pem and DIR/<name>-key.pem
(name: "server", or the client's --cn), replacing older ones atomically so a running
tern picks a renewed server certificate up (SIGHUP or tls.reload_interval).
Keys are written with mode 0600. NAMES and ADDRS are comma-separated.
`

// runCert implements `tern cert`.
func runCert(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, certUsage)
		return 2
	}
	kind := args[0]
	fs := flag.NewFlagSet("tern cert "+kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, certUsage); fs.PrintDefaults() }
	dir := fs.String("dir", "certs", "directory for the files")
	cn := fs.String("cn", "", `subject common name (ca: "Tern CA", server: the first --dns name or "localhost"; client: required, the user name for EXTERNAL)`)
	days := fs.Int("days", 0, "validity in days (ca: 3650, others: 365)")
	dns := fs.String("dns", "", `DNS names (server default "localhost")`)
	ips := fs.String("ip", "", `IP addresses (server default "127.0.0.1,::1")`)
	emails := fs.String("email", "", "e-mail addresses (client certificates)")
	name := fs.String("name", "", "file name stem of the certificate and key")
	force := fs.Bool("force", false, "ca: replace an existing CA (certificates it signed stop verifying)")
	switch kind {
	case "ca", "server", "client":
	case "-h", "--help", "help":
		fmt.Fprint(stdout, certUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "tern cert: unknown kind %q\n\n%s", kind, certUsage)
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tern cert %s: unexpected argument %q\n", kind, fs.Arg(0))
		return 2
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(stderr, "tern cert:", err)
		return 1
	}
	caCert, caKey := filepath.Join(*dir, "ca.pem"), filepath.Join(*dir, "ca-key.pem")
	req := certs.Request{CommonName: *cn, DNSNames: list(*dns), Emails: list(*emails), Validity: time.Duration(*days) * 24 * time.Hour}
	for _, s := range list(*ips) {
		ip := net.ParseIP(s)
		if ip == nil {
			fmt.Fprintf(stderr, "tern cert: --ip %q is not an IP address\n", s)
			return 2
		}
		req.IPs = append(req.IPs, ip)
	}
	if kind == "ca" {
		if _, err := os.Stat(caCert); err == nil && !*force {
			fmt.Fprintf(stderr, "tern cert ca: %s exists; --force replaces it (every certificate it signed stops verifying)\n", caCert)
			return 1
		}
		if req.CommonName == "" {
			req.CommonName = "Tern CA"
		}
		if *days == 0 {
			req.Validity = 3650 * 24 * time.Hour
		}
		ca, err := certs.NewCA(req)
		if err == nil {
			err = ca.WriteFiles(caCert, caKey)
		}
		if err != nil {
			fmt.Fprintln(stderr, "tern cert ca:", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %s and %s (serial %s)\n", caCert, caKey, ca.Cert.SerialNumber.Text(16))
		return 0
	}
	ca, err := certs.LoadIssued(caCert, caKey)
	if err != nil {
		fmt.Fprintf(stderr, "tern cert %s: %v (run tern cert ca --dir %s first)\n", kind, err, *dir)
		return 1
	}
	stem := *name
	if kind == "server" {
		if len(req.DNSNames) == 0 && len(req.IPs) == 0 {
			req.DNSNames = []string{"localhost"}
			req.IPs = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
		}
		if req.CommonName == "" && len(req.DNSNames) > 0 {
			req.CommonName = req.DNSNames[0]
		}
		if stem == "" {
			stem = "server"
		}
	} else {
		req.Client = true
		if req.CommonName == "" {
			fmt.Fprintln(stderr, "tern cert client: --cn is required (the user name the broker sees)")
			return 2
		}
		if stem == "" {
			stem = req.CommonName
		}
		if strings.ContainsAny(stem, `/\`) || stem == "ca" || stem == "ca-key" {
			fmt.Fprintf(stderr, "tern cert client: %q cannot be a file name stem; pass --name\n", stem)
			return 2
		}
	}
	issued, err := certs.Issue(ca, req)
	certFile, keyFile := filepath.Join(*dir, stem+".pem"), filepath.Join(*dir, stem+"-key.pem")
	if err == nil {
		err = issued.WriteFiles(certFile, keyFile)
	}
	if err != nil {
		fmt.Fprintf(stderr, "tern cert %s: %v\n", kind, err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s and %s (serial %s, valid until %s)\n", certFile, keyFile,
		issued.Cert.SerialNumber.Text(16), issued.Cert.NotAfter.UTC().Format(time.DateOnly))
	return 0
}

// list splits a comma-separated flag value.
func list(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
