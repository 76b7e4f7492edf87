package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// ctlClient makes the HTTP API's requests for `tern ctl`.
type ctlClient struct {
	base       string
	user, pass string
	hc         *http.Client
}

// client builds the command's HTTP client on first use: commands that
// fail on their arguments never read a password file.
func (r *ctlRun) client() (*ctlClient, error) {
	if r.cl != nil {
		return r.cl, nil
	}
	g := r.g
	u, err := url.Parse(g.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErr("--url %q is not an http:// or https:// URL", g.url)
	}
	pass, err := g.loginPassword(r)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if g.cacert != "" {
		pem, err := os.ReadFile(g.cacert)
		if err != nil {
			return nil, usageErr("--cacert: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageErr("--cacert %s holds no PEM certificate", g.cacert)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	r.cl = &ctlClient{base: strings.TrimRight(g.url, "/"), user: g.user, pass: pass, hc: &http.Client{Transport: tr, Timeout: g.timeout}}
	return r.cl, nil
}

// loginPassword is the password from --password, --password-file or
// TERN_CTL_PASSWORD, in that order; the user guest without any logs in
// with guest, as rabbitmqadmin does.
func (g *ctlGlobals) loginPassword(r *ctlRun) (string, error) {
	switch {
	case g.passwordFlagUsed:
		return g.password, nil
	case g.passwordFile != "":
		p, err := readSecretFile(g.passwordFile, r.stdin, r.stderr)
		if err != nil {
			return "", usageErr("--password-file: %v", err)
		}
		return p, nil
	}
	if p, ok := os.LookupEnv("TERN_CTL_PASSWORD"); ok {
		return p, nil
	}
	if g.user == "guest" {
		return "guest", nil
	}
	return "", usageErr("no password for user %q: set TERN_CTL_PASSWORD or give --password-file", g.user)
}

// esc escapes one path segment: the default vhost "/" is %2F.
func esc(s string) string { return url.PathEscape(s) }

// apiPath joins escaped segments under /api.
func apiPath(segs ...string) string {
	var b strings.Builder
	b.WriteString("/api")
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(esc(s))
	}
	return b.String()
}

// do sends a request (body marshalled as JSON unless it is []byte) and
// returns the answer's body; a status other than 2xx is an error with the
// server's reason and the exit code for it.
func (c *ctlClient) do(method, path string, body any, header http.Header) ([]byte, int, error) {
	var rd io.Reader
	if body != nil {
		raw, ok := body.([]byte)
		if !ok {
			var err error
			if raw, err = json.Marshal(body); err != nil {
				return nil, 0, err
			}
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return nil, 0, usageErr("%v", err)
	}
	req.SetBasicAuth(c.user, c.pass)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, 0, &ctlError{code: exitServer, msg: "cannot reach the server: " + err.Error()}
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return nil, resp.StatusCode, &ctlError{code: exitServer, msg: "reading the answer: " + err.Error()}
	}
	if resp.StatusCode/100 == 2 {
		return out, resp.StatusCode, nil
	}
	return out, resp.StatusCode, apiError(resp.StatusCode, out, method+" "+path)
}

// apiError turns a failed answer into an error with RabbitMQ's reason.
func apiError(status int, body []byte, request string) error {
	var e struct {
		Error  string `json:"error"`
		Reason string `json:"reason"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && (e.Reason != "" || e.Error != "") {
		msg = e.Reason
		if msg == "" {
			msg = e.Error
		}
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	code := exitServer
	switch {
	case status == http.StatusNotFound:
		code = exitNotFound
	case status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusTooManyRequests:
		code = exitRefused
	case status/100 == 4:
		code = exitRejected
	}
	return &ctlError{code: code, msg: fmt.Sprintf("%s (HTTP %d from %s)", msg, status, request)}
}

// getJSON GETs path and decodes the answer into v (numbers kept as
// json.Number so counts print as integers).
func (c *ctlClient) getJSON(path string, v any) error {
	body, _, err := c.do(http.MethodGet, path, nil, nil)
	if err != nil {
		return err
	}
	return decodeJSON(body, v)
}

func decodeJSON(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return &ctlError{code: exitServer, msg: "the server's answer is not the JSON expected: " + err.Error()}
	}
	return nil
}

// isNotFound reports whether err is a 404.
func isNotFound(err error) bool {
	var ce *ctlError
	return errors.As(err, &ce) && ce.code == exitNotFound
}
