package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/facgw/facgw/internal/web/auth"
)

// passwd prints the bcrypt hash of a password read from stdin (one line),
// for a user's password_hash in the http section. The password never
// appears on the command line, where ps and shell history would keep it.
func passwd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if f, ok := stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprint(stderr, "password (echoed; pipe it in to avoid that): ")
		}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(stderr, "facgw passwd: no password on stdin")
		return 1
	}
	hash, err := auth.HashPassword(strings.TrimRight(line, "\r\n"))
	if err != nil {
		fmt.Fprintln(stderr, "facgw passwd:", err)
		return 1
	}
	fmt.Fprintln(stdout, hash)
	return 0
}
