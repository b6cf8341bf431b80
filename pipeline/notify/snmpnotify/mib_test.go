package snmpnotify

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gosnmp/gosnmp"

	"github.com/facgw/facgw/internal/alert"
)

const base = DefaultEnterpriseOID

// vb is an expected varbind.
type vb struct {
	oid string
	typ gosnmp.Asn1BER
	val any
}

func (v vb) String() string { return fmt.Sprintf("%s %v %v", v.oid, v.typ, v.val) }

func got(pdus []gosnmp.SnmpPDU) []vb {
	out := make([]vb, len(pdus))
	for i, p := range pdus {
		val := p.Value
		if b, ok := val.([]byte); ok {
			val = string(b)
		}
		out[i] = vb{p.Name, p.Type, val}
	}
	return out
}

// The varbinds of testEvent, written out from the MIB: OIDs
// facgwAlertObjects.N.0, types and values as FACGW-MIB defines them.
var testEventVarbinds = []vb{
	{"1.3.6.1.2.1.1.3.0", gosnmp.TimeTicks, uint32(4242)},
	{"1.3.6.1.6.3.1.1.4.1.0", gosnmp.ObjectIdentifier, "1.3.6.1.4.1.32473.0.1"},
	{"1.3.6.1.4.1.32473.1.1.1.0", gosnmp.OctetString, "3f2a9c41d07be5a86c11"},
	{"1.3.6.1.4.1.32473.1.1.2.0", gosnmp.Counter64, uint64(42)},
	{"1.3.6.1.4.1.32473.1.1.3.0", gosnmp.OctetString, "power/ups-on-battery"},
	{"1.3.6.1.4.1.32473.1.1.4.0", gosnmp.OctetString, "power"},
	{"1.3.6.1.4.1.32473.1.1.5.0", gosnmp.Integer, 4},
	{"1.3.6.1.4.1.32473.1.1.6.0", gosnmp.Integer, 2},
	{"1.3.6.1.4.1.32473.1.1.7.0", gosnmp.OctetString, "ups-1"},
	{"1.3.6.1.4.1.32473.1.1.8.0", gosnmp.OctetString, ""},
	{"1.3.6.1.4.1.32473.1.1.9.0", gosnmp.OctetString, "UPS ups-1 on battery: 17 min left"},
	{"1.3.6.1.4.1.32473.1.1.10.0", gosnmp.OctetString, "\x07\xea\x03\x0e\x0f\x09\x1a\x05+\x00\x00"},
	{"1.3.6.1.4.1.32473.1.1.11.0", gosnmp.OctetString, "fra1"},
	{"1.3.6.1.4.1.32473.1.1.12.0", gosnmp.OctetString, "gw-a"},
	{"1.3.6.1.4.1.32473.1.1.13.0", gosnmp.Integer, 1},
	{"1.3.6.1.4.1.32473.1.1.14.0", gosnmp.OctetString, ""},
	{"1.3.6.1.4.1.32473.1.1.15.0", gosnmp.OctetString, "\x07\xea\x03\x0e\x0f\x0a\x00\x00+\x00\x00"},
}

func TestEncodeAllVarbinds(t *testing.T) {
	ev := testEvent("3f2a9c41d07be5a86c11", 42)
	n, err := encode(base, &ev, "", "")
	if err != nil {
		t.Fatal(err)
	}
	g := got(n.withHeader(4242))
	if len(g) != len(testEventVarbinds) {
		t.Fatalf("got %d varbinds, want %d:\n%v", len(g), len(testEventVarbinds), g)
	}
	for i, want := range testEventVarbinds {
		if !reflect.DeepEqual(g[i], want) {
			t.Errorf("varbind %d: got %v, want %v", i, g[i], want)
		}
	}
	if want := (deliveryKey{"3f2a9c41d07be5a86c11", alert.KindFiring, 42}); n.key != want {
		t.Errorf("key: got %+v, want %+v", n.key, want)
	}
}

func TestEncodeVariants(t *testing.T) {
	for _, tc := range []struct {
		name          string
		base          string
		site, gateway string // Options.Site, Options.Gateway
		edit          func(*alert.Event)
		trapOID       string
		want          []vb // varbinds that must be present
	}{
		{"resolved", base, "", "", func(e *alert.Event) {
			e.Kind, e.State, e.SupervisionLost = alert.KindResolved, alert.Resolved, false
			e.ResolvedAt = e.At
		}, "1.3.6.1.4.1.32473.0.2", []vb{
			{"1.3.6.1.4.1.32473.1.1.6.0", gosnmp.Integer, 3},
			{"1.3.6.1.4.1.32473.1.1.13.0", gosnmp.Integer, 2},
		}},
		{"acknowledged", base, "", "", func(e *alert.Event) {
			e.Kind = alert.KindAcknowledged
			e.Ack = &alert.Ack{By: "alice", At: e.At, Comment: "on it"}
		}, "1.3.6.1.4.1.32473.0.3", []vb{
			{"1.3.6.1.4.1.32473.1.1.6.0", gosnmp.Integer, 2},
			{"1.3.6.1.4.1.32473.1.1.14.0", gosnmp.OctetString, "alice"},
		}},
		{"silenced", base, "", "", func(e *alert.Event) { e.Kind = alert.KindSilenced }, "1.3.6.1.4.1.32473.0.4", nil},
		{"unsilenced", base, "", "", func(e *alert.Event) { e.Kind = alert.KindUnsilenced }, "1.3.6.1.4.1.32473.0.5", nil},
		{"group rule", base, "", "", func(e *alert.Event) {
			e.Device, e.Group, e.Severity = "", "row-3", alert.Info
		}, "1.3.6.1.4.1.32473.0.1", []vb{
			{"1.3.6.1.4.1.32473.1.1.5.0", gosnmp.Integer, 1},
			{"1.3.6.1.4.1.32473.1.1.7.0", gosnmp.OctetString, ""},
			{"1.3.6.1.4.1.32473.1.1.8.0", gosnmp.OctetString, "row-3"},
		}},
		{"site and gateway from the options", base, "ams2", "gw-b", func(e *alert.Event) {
			e.Site, e.Gateway = "", ""
		}, "1.3.6.1.4.1.32473.0.1", []vb{
			{"1.3.6.1.4.1.32473.1.1.11.0", gosnmp.OctetString, "ams2"},
			{"1.3.6.1.4.1.32473.1.1.12.0", gosnmp.OctetString, "gw-b"},
		}},
		{"the event's site and gateway win", base, "ams2", "gw-b", func(*alert.Event) {}, "1.3.6.1.4.1.32473.0.1", []vb{
			{"1.3.6.1.4.1.32473.1.1.11.0", gosnmp.OctetString, "fra1"},
			{"1.3.6.1.4.1.32473.1.1.12.0", gosnmp.OctetString, "gw-a"},
		}},
		{"unknown times", base, "", "", func(e *alert.Event) {
			e.ActiveAt, e.At = time.Time{}, time.Time{}
		}, "1.3.6.1.4.1.32473.0.1", []vb{
			{"1.3.6.1.4.1.32473.1.1.10.0", gosnmp.OctetString, "\x00\x00\x00\x00\x00\x00\x00\x00"},
			{"1.3.6.1.4.1.32473.1.1.15.0", gosnmp.OctetString, "\x00\x00\x00\x00\x00\x00\x00\x00"},
		}},
		{"a site's own enterprise", "1.3.6.1.4.1.99999.7", "", "", func(e *alert.Event) { e.Kind = alert.KindResolved },
			"1.3.6.1.4.1.99999.7.0.2", []vb{
				{"1.3.6.1.4.1.99999.7.1.1.1.0", gosnmp.OctetString, "3f2a9c41d07be5a86c11"},
				{"1.3.6.1.4.1.99999.7.1.1.15.0", gosnmp.OctetString, "\x07\xea\x03\x0e\x0f\x0a\x00\x00+\x00\x00"},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := testEvent("3f2a9c41d07be5a86c11", 42)
			tc.edit(&ev)
			n, err := encode(tc.base, &ev, tc.site, tc.gateway)
			if err != nil {
				t.Fatal(err)
			}
			g := got(n.withHeader(1))
			if len(g) != 17 {
				t.Errorf("got %d varbinds, want 17", len(g))
			}
			if g[1].val != tc.trapOID {
				t.Errorf("snmpTrapOID.0: got %v, want %s", g[1].val, tc.trapOID)
			}
			for _, want := range tc.want {
				found := false
				for _, v := range g {
					if v.oid == want.oid {
						found = true
						if !reflect.DeepEqual(v, want) {
							t.Errorf("got %v, want %v", v, want)
						}
					}
				}
				if !found {
					t.Errorf("no varbind %s", want.oid)
				}
			}
		})
	}
}

func TestEncodeRefusesWhatTheMIBCannotSay(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*alert.Event)
		want string
	}{
		{"unknown kind", func(e *alert.Event) { e.Kind = "escalated" }, `kind "escalated" has no notification`},
		{"no severity", func(e *alert.Event) { e.Severity = 0 }, "severity 0 is not one of FACGW-MIB's"},
		{"severity above critical", func(e *alert.Event) { e.Severity = alert.Critical + 1 }, "severity 5 is not one of FACGW-MIB's"},
		{"unknown state", func(e *alert.Event) { e.State = "flapping" }, `state "flapping" is not one of FACGW-MIB's`},
		{"no state", func(e *alert.Event) { e.State = "" }, `state "" is not one of FACGW-MIB's`},
		{"empty id", func(e *alert.Event) { e.ID = "" }, "id must have 1 to 64 octets, has 0"},
		{"id too long", func(e *alert.Event) { e.ID = strings.Repeat("a", 65) }, "id must have 1 to 64 octets, has 65"},
		{"id with a control character", func(e *alert.Event) { e.ID = "ev\n1" }, `id "ev\n1" is not printable UTF-8`},
		{"id not utf-8", func(e *alert.Event) { e.ID = "ev\xff" }, `id "ev\xff" is not printable UTF-8`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := testEvent("ev-1", 7)
			tc.edit(&ev)
			_, err := encode(base, &ev, "", "")
			if err == nil {
				t.Fatalf("got no error, want one saying %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "seq 7") {
				t.Errorf("got error %q, want it to say %q and name seq 7", err, tc.want)
			}
		})
	}
}

func TestAdminString(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"plain", "UPS ups-1 on battery", "UPS ups-1 on battery"},
		{"utf-8 kept", "Kühlung Raum 3 – 27 °C", "Kühlung Raum 3 – 27 °C"},
		{"newline and tab become spaces", "line one\nline two\tx\r", "line one line two x "},
		{"C1 control and DEL become spaces", "a\u0085b\x7fc", "a b c"},
		{"invalid utf-8 replaced", "bad \xff byte", "bad \uFFFD byte"},
		{"exactly 255 octets kept", a(255), a(255)},
		{"256 octets cut with ellipsis", a(256), a(252) + "…"},
		{"multi-byte character that fits kept", a(252) + "€", a(252) + "€"},
		{"cut before a multi-byte character, not inside", a(250) + "€€", a(250) + "…"},
		{"cut at a boundary between multi-byte characters", strings.Repeat("€", 90), strings.Repeat("€", 84) + "…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := string(AdminString(tc.in))
			if g != tc.want {
				t.Errorf("got %q (%d octets), want %q (%d octets)", g, len(g), tc.want, len(tc.want))
			}
			if len(g) > MaxText || !utf8.ValidString(g) {
				t.Errorf("got %d octets, valid UTF-8 %v; want at most %d, valid", len(g), utf8.ValidString(g), MaxText)
			}
		})
	}
}

func TestDateAndTime(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		name string
		in   time.Time
		want []byte
	}{
		{"utc", time.Date(2026, 3, 14, 15, 9, 26, 512_000_000, time.UTC),
			[]byte{0x07, 0xea, 3, 14, 15, 9, 26, 5, '+', 0, 0}},
		{"other zone converted to utc", time.Date(2026, 1, 1, 0, 30, 0, 0, cet),
			[]byte{0x07, 0xe9, 12, 31, 23, 30, 0, 0, '+', 0, 0}},
		{"deciseconds truncated", time.Date(1999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
			[]byte{0x07, 0xcf, 12, 31, 23, 59, 59, 9, '+', 0, 0}},
		{"zero is unknown", time.Time{}, make([]byte, 8)},
		{"year beyond 65535 is unknown", time.Date(70000, 1, 1, 0, 0, 0, 0, time.UTC), make([]byte, 8)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if g := DateAndTime(tc.in); !bytes.Equal(g, tc.want) {
				t.Errorf("got % x, want % x", g, tc.want)
			}
		})
	}
}

func TestMIBOIDsCoverEveryKind(t *testing.T) {
	kinds := []alert.Kind{alert.KindFiring, alert.KindResolved, alert.KindAcknowledged, alert.KindSilenced, alert.KindUnsilenced}
	seen := map[string]bool{}
	for _, k := range kinds {
		ev := testEvent("ev-1", 1)
		ev.Kind = k
		n, err := encode(base, &ev, "", "")
		if err != nil {
			t.Errorf("kind %s: %v", k, err)
			continue
		}
		if seen[n.trapOID] {
			t.Errorf("kind %s: notification %s used by another kind", k, n.trapOID)
		}
		seen[n.trapOID] = true
	}
	if got := len(mibOIDs(base)); got != len(kinds)+15 {
		t.Errorf("got %d names, want %d notifications and 15 objects", got, len(kinds))
	}
}
