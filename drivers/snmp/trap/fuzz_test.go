package trap

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

// FuzzTrapDecode feeds arbitrary datagrams from a configured source to the
// listener: it must neither panic (the decoders' recover counts panics, and
// there must be none) nor block.
func FuzzTrapDecode(f *testing.F) {
	l, err := New(testConfig(), func(Event) {})
	if err != nil {
		f.Fatal(err)
	}
	minutes := gosnmp.SnmpPDU{Name: oidMinutesLeft, Type: gosnmp.Integer, Value: 17}
	f.Add(encodeV1(f, "public", "1.3.6.1.2.1.33.2", 6, 1, []gosnmp.SnmpPDU{minutes}))
	f.Add(encodeV2c(f, "public", gosnmp.SNMPv2Trap, notification(oidOnBattery, minutes)))
	f.Add(encodeV2c(f, "public", gosnmp.InformRequest, notification(oidLinkDown)))
	f.Add(encodeV3Trap(f, userSHA256, "\x80\x00\x00\x00\x05sender", notification(oidOnBattery, minutes)))
	f.Add(encodeV3Trap(f, userAuth, "\x80\x00\x00\x00\x05sender", notification(oidOnBattery)))
	f.Add([]byte{0x30, 0x00})
	from := netip.MustParseAddrPort("127.0.0.1:162")
	q := make(chan Event, 1)
	f.Fuzz(func(t *testing.T, b []byte) {
		l.handle(b, from, time.Now(), q)
		select {
		case <-q:
		default:
		}
		if n := l.panics.Load(); n != 0 {
			t.Fatalf("decoder panicked (%d)", n)
		}
	})
}
