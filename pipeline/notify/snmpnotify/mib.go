package snmpnotify

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gosnmp/gosnmp"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/snmpagent"
)

// DefaultEnterpriseOID is the OID of the FACGW-MIB module (facgwMIB), under
// which every object and notification facgw sends sits: enterprises.32473,
// the Private Enterprise Number IANA reserves for documentation (RFC 5612),
// because facgw has none of its own yet. Options.EnterpriseOID moves the
// whole tree, e.g. under a site's own number.
const DefaultEnterpriseOID = "1.3.6.1.4.1.32473"

// MIBFile is where the FACGW-MIB lives in the source tree, for packaging
// and for operators to load into their NMS.
const MIBFile = "deploy/mib/FACGW-MIB.txt"

// The arcs below facgwMIB, as deploy/mib/FACGW-MIB.txt assigns them (a test
// translates every name with net-snmp and compares).
const (
	arcNotifications = "0"   // facgwNotifications
	arcAlertObjects  = "1.1" // facgwObjects.facgwAlertObjects
)

// notificationArcs maps each event kind to its notification type, the last
// arc under facgwNotifications.
var notificationArcs = []struct {
	kind alert.Kind
	name string
	arc  int
}{
	{alert.KindFiring, "facgwAlertFiring", 1},
	{alert.KindResolved, "facgwAlertResolved", 2},
	{alert.KindAcknowledged, "facgwAlertAcknowledged", 3},
	{alert.KindSilenced, "facgwAlertSilenced", 4},
	{alert.KindUnsilenced, "facgwAlertUnsilenced", 5},
}

// Object arcs under facgwAlertObjects; the varbinds go out in this order.
const (
	objID = iota + 1
	objSeq
	objRule
	objClass
	objSeverity
	objState
	objDevice
	objGroup
	objSummary
	objActiveAt
	objSite
	objGateway
	objSupervisionLost
	objAckBy
	objEventAt
	numObjects = iota
)

var objectNames = [numObjects + 1]string{
	objID: "facgwAlertId", objSeq: "facgwAlertSeq", objRule: "facgwAlertRule", objClass: "facgwAlertClass",
	objSeverity: "facgwAlertSeverity", objState: "facgwAlertState", objDevice: "facgwAlertDevice",
	objGroup: "facgwAlertGroup", objSummary: "facgwAlertSummary", objActiveAt: "facgwAlertActiveAt",
	objSite: "facgwAlertSite", objGateway: "facgwAlertGateway", objSupervisionLost: "facgwAlertSupervisionLost",
	objAckBy: "facgwAlertAckBy", objEventAt: "facgwAlertEventAt",
}

// MaxText is the most octets a text varbind carries (SnmpAdminString's
// bound); longer text is cut at a character boundary and ends in "…".
const MaxText = 255

// maxID bounds facgwAlertId (SIZE (1..64)); episode ids are 20 hex digits.
const maxID = 64

// Values of the MIB's enumerations.
var stateValues = map[alert.State]int{alert.Pending: 1, alert.Firing: 2, alert.Resolved: 3}

// TruthValue (SNMPv2-TC).
const (
	truthTrue  = 1
	truthFalse = 2
)

// mibOIDs returns every name facgw sends with its OID under base: the
// notification types and the objects (without the .0 instance suffix).
// Only the tests need it, to compare against the MIB file.
func mibOIDs(base string) map[string]string {
	m := make(map[string]string, len(notificationArcs)+numObjects)
	for _, n := range notificationArcs {
		m[n.name] = fmt.Sprintf("%s.%s.%d", base, arcNotifications, n.arc)
	}
	for i := 1; i <= numObjects; i++ {
		m[objectNames[i]] = fmt.Sprintf("%s.%s.%d", base, arcAlertObjects, i)
	}
	return m
}

// notification is one event as an SNMPv2 notification.
type notification struct {
	key      deliveryKey
	trapOID  string
	varbinds []gosnmp.SnmpPDU // without sysUpTime.0 and snmpTrapOID.0
}

// deliveryKey identifies a delivery of an event (alert.Event's contract).
type deliveryKey struct {
	id   string
	kind alert.Kind
	seq  uint64
}

// encode turns ev into its notification under base (a normalized OID).
// site and gateway stand in for an event that lacks them. An event the
// MIB cannot express (unknown kind, severity or state; an id that is empty
// or too long) is an error naming the event.
func encode(base string, ev *alert.Event, site, gateway string) (notification, error) {
	fail := func(format string, args ...any) (notification, error) {
		return notification{}, fmt.Errorf("event %q seq %d: %s", ev.ID, ev.Seq, fmt.Sprintf(format, args...))
	}
	trapOID := ""
	for _, n := range notificationArcs {
		if n.kind == ev.Kind {
			trapOID = fmt.Sprintf("%s.%s.%d", base, arcNotifications, n.arc)
		}
	}
	if trapOID == "" {
		return fail("kind %q has no notification in FACGW-MIB", ev.Kind)
	}
	if ev.ID == "" || len(ev.ID) > maxID {
		return fail("id must have 1 to %d octets, has %d", maxID, len(ev.ID))
	}
	// Cleaning the id up like other text would change it, and receivers
	// correlate on it: refuse it instead (ids are hex digits).
	if !utf8.ValidString(ev.ID) || strings.ContainsFunc(ev.ID, unicode.IsControl) {
		return fail("id %q is not printable UTF-8", ev.ID)
	}
	if ev.Severity < alert.Info || ev.Severity > alert.Critical {
		return fail("severity %d is not one of FACGW-MIB's (info(1) .. critical(4))", ev.Severity)
	}
	state, ok := stateValues[ev.State]
	if !ok {
		return fail("state %q is not one of FACGW-MIB's (pending, firing, resolved)", ev.State)
	}
	if ev.Site != "" {
		site = ev.Site
	}
	if ev.Gateway != "" {
		gateway = ev.Gateway
	}
	ackBy := ""
	if ev.Ack != nil {
		ackBy = ev.Ack.By
	}
	supervision := truthFalse
	if ev.SupervisionLost {
		supervision = truthTrue
	}
	obj := func(i int) string { return fmt.Sprintf("%s.%s.%d.0", base, arcAlertObjects, i) }
	text := func(i int, s string) gosnmp.SnmpPDU {
		return gosnmp.SnmpPDU{Name: obj(i), Type: gosnmp.OctetString, Value: AdminString(s)}
	}
	integer := func(i, v int) gosnmp.SnmpPDU {
		return gosnmp.SnmpPDU{Name: obj(i), Type: gosnmp.Integer, Value: v}
	}
	date := func(i int, t time.Time) gosnmp.SnmpPDU {
		return gosnmp.SnmpPDU{Name: obj(i), Type: gosnmp.OctetString, Value: DateAndTime(t)}
	}
	vbs := []gosnmp.SnmpPDU{
		{Name: obj(objID), Type: gosnmp.OctetString, Value: []byte(ev.ID)},
		{Name: obj(objSeq), Type: gosnmp.Counter64, Value: ev.Seq},
		text(objRule, ev.Rule),
		text(objClass, ev.Class),
		integer(objSeverity, int(ev.Severity)),
		integer(objState, state),
		text(objDevice, ev.Device),
		text(objGroup, ev.Group),
		text(objSummary, ev.Summary),
		date(objActiveAt, ev.ActiveAt),
		text(objSite, site),
		text(objGateway, gateway),
		integer(objSupervisionLost, supervision),
		text(objAckBy, ackBy),
		date(objEventAt, ev.At),
	}
	return notification{key: deliveryKey{ev.ID, ev.Kind, ev.Seq}, trapOID: trapOID, varbinds: vbs}, nil
}

// withHeader returns the full varbind list of n: sysUpTime.0 and
// snmpTrapOID.0 first, as RFC 3416 4.2.6 and 4.2.7 require.
func (n notification) withHeader(uptime uint32) []gosnmp.SnmpPDU {
	return append([]gosnmp.SnmpPDU{
		{Name: snmpagent.OIDSysUpTime, Type: gosnmp.TimeTicks, Value: uptime},
		{Name: snmpagent.OIDSnmpTrapOID, Type: gosnmp.ObjectIdentifier, Value: n.trapOID},
	}, n.varbinds...)
}

// AdminString returns s as SnmpAdminString octets: valid UTF-8 (invalid
// bytes become U+FFFD), on one line (control characters, newlines
// included, become spaces: line-oriented receivers such as snmptrapd's
// traphandle and snmptt take a newline for the end of the value), and at
// most MaxText octets, cut at a character boundary and ending in "…" when
// cut.
func AdminString(s string) []byte {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) <= MaxText {
		return []byte(s)
	}
	const ellipsis = "…"
	cut := MaxText - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return []byte(s[:cut] + ellipsis)
}

// DateAndTime returns t as SNMPv2-TC's DateAndTime in its 11-octet form,
// in UTC (direction '+', offset 0:00), with deciseconds truncated. The
// zero time, and a year DateAndTime cannot hold, give '0000000000000000'H,
// which FACGW-MIB defines as unknown.
func DateAndTime(t time.Time) []byte {
	u := t.UTC()
	if t.IsZero() || u.Year() < 0 || u.Year() > 0xFFFF {
		return make([]byte, 8)
	}
	y := u.Year()
	return []byte{
		byte(y >> 8), byte(y), byte(u.Month()), byte(u.Day()),
		byte(u.Hour()), byte(u.Minute()), byte(u.Second()), byte(u.Nanosecond() / 100_000_000),
		'+', 0, 0,
	}
}
