package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/tern-broker/tern/internal/auth"
)

// runHashPassword prints an argon2id PHC string for a config file's
// password_hash. The password comes from the argument if there is one
// (convenient, but it lands in shell history and `ps`), otherwise from a
// prompt without echo on a terminal, otherwise from the first line of
// standard input.
func runHashPassword(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var password string
	switch len(args) {
	case 1:
		password = args[0]
	case 0:
		p, err := readPassword(stdin, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "tern hash-password:", err)
			return 1
		}
		password = p
	default:
		fmt.Fprint(stderr, usage)
		return 2
	}
	if password == "" {
		fmt.Fprintln(stderr, "tern hash-password: empty password")
		return 2
	}
	fmt.Fprintln(stdout, auth.HashPassword(password))
	return 0
}

func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		fmt.Fprint(stderr, "Again: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		if string(first) != string(again) {
			return "", errors.New("the passwords differ")
		}
		return string(first), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from standard input: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
