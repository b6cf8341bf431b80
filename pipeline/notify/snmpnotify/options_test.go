package snmpnotify

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

// Secrets of the option tests: distinctive, so that a leak into an error
// message is found by a substring search.
const (
	community = "c0mmunity-SECRET"
	authPass  = "auth-pass-SECRET"
	privPass  = "priv-pass-SECRET"
)

func v3Opts() Options {
	return Options{
		Address: "127.0.0.1:162", Version: "3", Inform: true, User: "nms", SecurityLevel: "authPriv",
		AuthProtocol: "SHA-256", AuthPassword: authPass, PrivProtocol: "AES-256", PrivPassword: privPass,
	}
}

func TestNewValidates(t *testing.T) {
	v2c := Options{Address: "nms.example:162", Version: "2c", Community: community}
	for _, tc := range []struct {
		name string
		opts func() Options
		want []string // substrings of the error; none for a valid config
	}{
		{"v2c trap", func() Options { return v2c }, nil},
		{"v3 inform", v3Opts, nil},
		{"v3 trap with engine id", func() Options {
			o := v3Opts()
			o.Inform, o.EngineID = false, "0x80007ed90501020304"
			return o
		}, nil},
		{"v3 trap with derived engine id", func() Options {
			o := v3Opts()
			o.Inform, o.Gateway = false, "gw-a"
			return o
		}, nil},
		{"v3 noAuthNoPriv", func() Options {
			return Options{Address: "[::1]:162", Version: "3", User: "nms", Inform: true}
		}, nil},
		{"v3 level from the passphrases", func() Options {
			o := v3Opts()
			o.SecurityLevel, o.PrivProtocol, o.PrivPassword = "", "", ""
			return o
		}, nil},
		{"protocol spellings", func() Options {
			o := v3Opts()
			o.AuthProtocol, o.PrivProtocol = "sha512", "AES-256C"
			return o
		}, nil},
		{"net-snmp's spelling of the Cisco AES", func() Options {
			o := v3Opts()
			o.PrivProtocol = "AES-192-C"
			return o
		}, nil},
		{"no port", func() Options { o := v2c; o.Address = "nms.example"; return o }, []string{`address "nms.example": want host:port`}},
		{"port 0", func() Options { o := v2c; o.Address = "nms.example:0"; return o }, []string{"port must be 1..65535"}},
		{"version 1", func() Options { o := v2c; o.Version = "1"; return o }, []string{"version 1 cannot carry FACGW-MIB notifications"}},
		{"no version", func() Options { o := v2c; o.Version = ""; return o }, []string{`version "": want 2c or 3`}},
		{"v2c without community", func() Options { o := v2c; o.Community = ""; return o }, []string{"version 2c needs a community"}},
		{"v2c with a user", func() Options { o := v2c; o.User = "nms"; return o }, []string{"apply to version 3 only"}},
		{"v3 with a community", func() Options { o := v3Opts(); o.Community = community; return o }, []string{"community applies to version 2c"}},
		{"v3 without user", func() Options { o := v3Opts(); o.User = ""; return o }, []string{"needs a user"}},
		{"unknown level", func() Options { o := v3Opts(); o.SecurityLevel = "paranoid"; return o }, []string{`security level "paranoid"`}},
		{"unknown auth protocol", func() Options { o := v3Opts(); o.AuthProtocol = "SHA-3"; return o }, []string{`authentication protocol "SHA-3"`}},
		{"no auth protocol", func() Options { o := v3Opts(); o.AuthProtocol = ""; return o }, []string{"security level authPriv needs an authentication protocol"}},
		{"no priv protocol", func() Options { o := v3Opts(); o.PrivProtocol = ""; return o }, []string{"needs a privacy protocol"}},
		{"unknown priv protocol", func() Options { o := v3Opts(); o.PrivProtocol = "3DES"; return o }, []string{`privacy protocol "3DES"`}},
		{"short passphrases", func() Options {
			o := v3Opts()
			o.AuthPassword, o.PrivPassword = "short", "tiny"
			return o
		}, []string{"authentication passphrase of at least 8", "privacy passphrase of at least 8"}},
		{"priv options at authNoPriv", func() Options { o := v3Opts(); o.SecurityLevel = "authNoPriv"; return o }, []string{"takes no privacy protocol"}},
		{"engine id with an inform", func() Options { o := v3Opts(); o.EngineID = "80007ed90501020304"; return o }, []string{"engine id applies to v3 traps only"}},
		{"bad engine id", func() Options {
			o := v3Opts()
			o.Inform, o.EngineID = false, "0x80zz"
			return o
		}, []string{`engine id "0x80zz"`}},
		{"v3 trap without engine id or gateway", func() Options { o := v3Opts(); o.Inform = false; return o }, []string{"need an engine id, or a gateway name"}},
		{"negative timeout", func() Options { o := v2c; o.Timeout = -time.Second; return o }, []string{"timeout -1s must not be negative"}},
		{"too many retries", func() Options { o := v2c; o.Retries = 11; return o }, []string{"retries 11: want 0..10"}},
		{"bad enterprise oid", func() Options { o := v2c; o.EnterpriseOID = "enterprises.32473"; return o }, []string{`enterprise oid "enterprises.32473"`}},
		{"every problem at once", func() Options {
			return Options{Address: "x", Version: "3", Community: community, Retries: -1, EnterpriseOID: "1..2"}
		}, []string{"want host:port", "community applies", "needs a user", "retries -1", "enterprise oid"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.opts())
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				if s == nil {
					t.Fatal("got a nil Sender")
				}
				return
			}
			if err == nil {
				t.Fatalf("got no error, want one saying %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got error %q, want it to say %q", err, w)
				}
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "snmpnotify: receiver ") {
					t.Errorf("error line %q does not name the component and receiver", line)
				}
			}
			for _, secret := range []string{community, authPass, privPass} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error reveals a secret: %q", err)
				}
			}
		})
	}
}

func TestNewResolves(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    Options
		level   gosnmp.SnmpV3MsgFlags
		auth    gosnmp.SnmpV3AuthProtocol
		priv    gosnmp.SnmpV3PrivProtocol
		timeout time.Duration
		base    string
	}{
		{"defaults", Options{Address: "h:162", Version: "2c", Community: "public"}, 0, 0, 0, DefaultTimeout, "1.3.6.1.4.1.32473"},
		{"oid with a leading dot", Options{Address: "h:162", Version: "2c", Community: "public", EnterpriseOID: ".1.3.6.1.4.1.99999.7", Timeout: time.Second},
			0, 0, 0, time.Second, "1.3.6.1.4.1.99999.7"},
		{"authNoPriv derived", Options{Address: "h:162", Version: "3", Inform: true, User: "u", AuthProtocol: "sha", AuthPassword: authPass},
			gosnmp.AuthNoPriv, gosnmp.SHA, 0, DefaultTimeout, "1.3.6.1.4.1.32473"},
		{"AES-256 is Blumenthal", v3Opts(), gosnmp.AuthPriv, gosnmp.SHA256, gosnmp.AES256, DefaultTimeout, "1.3.6.1.4.1.32473"},
		{"AES-256C is Reeder", func() Options { o := v3Opts(); o.PrivProtocol = "aes256c"; return o }(),
			gosnmp.AuthPriv, gosnmp.SHA256, gosnmp.AES256C, DefaultTimeout, "1.3.6.1.4.1.32473"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustNew(t, tc.opts)
			p := s.p
			if p.level != tc.level || p.auth != tc.auth || p.priv != tc.priv || p.timeout != tc.timeout || p.base != tc.base {
				t.Errorf("got level %v auth %v priv %v timeout %s base %s; want %v %v %v %s %s",
					p.level, p.auth, p.priv, p.timeout, p.base, tc.level, tc.auth, tc.priv, tc.timeout, tc.base)
			}
		})
	}
}

func TestEngineID(t *testing.T) {
	// The derived id must never change: receivers are configured with it
	// (createUser -e). Format 5, enterprise 32473, 8 octets of hash.
	if got, want := DeriveEngineID("gw-a"), "80007ed905a9fe6519331a084f"; got != want {
		t.Errorf("DeriveEngineID(gw-a): got %s, want %s", got, want)
	}
	if DeriveEngineID("gw-a") == DeriveEngineID("gw-b") {
		t.Error("two gateways got the same engine id")
	}
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"derived", func() Options { o := v3Opts(); o.Inform, o.Gateway = false, "gw-a"; return o }(), "80007ed905a9fe6519331a084f"},
		{"given wins", func() Options {
			o := v3Opts()
			o.Inform, o.Gateway, o.EngineID = false, "gw-a", "0x8000000501020304"
			return o
		}(), "8000000501020304"},
		{"none for informs", v3Opts(), ""},
		{"none for v2c", Options{Address: "h:162", Version: "2c", Community: "public", Gateway: "gw-a"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustNew(t, tc.opts).EngineID(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestEngineBoots(t *testing.T) {
	at := time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		now  time.Time
		want uint32
	}{
		{"seconds since 2020", at, 195663600},
		{"a restart a second later boots higher", at.Add(time.Second), 195663601},
		{"clock before 2020", time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC), 1},
		{"never the latched maximum", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), 2147483646},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := engineBoots(tc.now); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	o := v3Opts()
	sender := mustNew(t, o)
	o.Community = community
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("options", "opts", o, "auth", o.AuthPassword)
	j, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{
		fmt.Sprint(o), fmt.Sprintf("%v %+v %#v %s %q %x", o, o, o, o.AuthPassword, o.PrivPassword, o.Community),
		string(j), logged.String(), fmt.Sprintf("%v %+v %#v", sender, sender, sender), fmt.Sprintf("%+v", sender.p),
	} {
		for _, secret := range []string{community, authPass, privPass} {
			if strings.Contains(out, secret) {
				t.Errorf("output reveals a secret: %s", out)
			}
		}
	}
	if got := fmt.Sprint(o.AuthPassword); got != "<secret>" {
		t.Errorf("got %q, want <secret>", got)
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Address: "10.0.0.5:162", Version: "2c", Community: "public"}, "v2c trap to 10.0.0.5:162"},
		{v3Opts(), "v3 inform to 127.0.0.1:162 as user nms"},
	} {
		if got := mustNew(t, tc.opts).String(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
