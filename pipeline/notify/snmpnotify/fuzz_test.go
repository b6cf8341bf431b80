package snmpnotify

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gosnmp/gosnmp"

	"github.com/facgw/facgw/internal/alert"
)

// FuzzEncode checks the encoder on arbitrary events: it refuses what the
// MIB cannot say and otherwise yields text varbinds that are valid UTF-8,
// one line and within SnmpAdminString's 255 octets, in a notification
// that marshals and decodes back to the same varbinds.
func FuzzEncode(f *testing.F) {
	f.Add("3f2a9c41d07be5a86c11", uint64(42), "firing", uint8(4), "power/ups-on-battery", "UPS on battery\nnow", "ups-1", int64(1773500966))
	f.Add("", uint64(0), "escalated", uint8(0), "", "", "", int64(0))
	f.Add(strings.Repeat("x", 64), ^uint64(0), "resolved", uint8(1), "r", strings.Repeat("€", 200), "\xff\xfe", int64(-1))
	f.Fuzz(func(t *testing.T, id string, seq uint64, kind string, severity uint8, rule, summary, device string, unix int64) {
		ev := testEvent(id, seq)
		ev.Kind, ev.Severity, ev.Rule, ev.Summary, ev.Device = alert.Kind(kind), alert.Severity(severity), rule, summary, device
		ev.At = time.Unix(unix, 0)
		n, err := encode(DefaultEnterpriseOID, &ev, "", "")
		if err != nil {
			return
		}
		vbs := n.withHeader(1)
		for _, v := range vbs {
			b, ok := v.Value.([]byte)
			if !ok || v.Type != gosnmp.OctetString || v.Name == n.varbinds[objActiveAt-1].Name || v.Name == n.varbinds[objEventAt-1].Name {
				continue
			}
			s := string(b)
			if len(b) > MaxText || !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
				t.Fatalf("varbind %s: %q is not one line of valid UTF-8 within %d octets", v.Name, s, MaxText)
			}
		}
		pkt := &gosnmp.SnmpPacket{Version: gosnmp.Version2c, Community: "public", PDUType: gosnmp.SNMPv2Trap, RequestID: 1, Variables: vbs}
		raw, err := pkt.MarshalMsg()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		back, err := (&gosnmp.GoSNMP{Version: gosnmp.Version2c}).SnmpDecodePacket(raw)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if len(back.Variables) != len(vbs) {
			t.Fatalf("got %d varbinds back, sent %d", len(back.Variables), len(vbs))
		}
		if got := back.Variables[2].Value; !bytes.Equal(got.([]byte), []byte(id)) {
			t.Fatalf("facgwAlertId: got %q back, sent %q", got, id)
		}
		if got := back.Variables[3].Value; got != seq {
			t.Fatalf("facgwAlertSeq: got %v back, sent %d", got, seq)
		}
	})
}
