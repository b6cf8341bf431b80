package trap

import (
	"strconv"

	"github.com/facgw/facgw/internal/snmpagent"
)

// Names of the well-known notifications facgw reacts to.
const (
	NameUPSOnBattery          = "upsTrapOnBattery"         // RFC 1628 upsTraps.1
	NameUPSTestCompleted      = "upsTrapTestCompleted"     // upsTraps.2
	NameUPSAlarmEntryAdded    = "upsTrapAlarmEntryAdded"   // upsTraps.3 (not sent for OnBattery or TestInProgress)
	NameUPSAlarmEntryRemoved  = "upsTrapAlarmEntryRemoved" // upsTraps.4
	NameColdStart             = "coldStart"                // snmpTraps.1
	NameWarmStart             = "warmStart"                // snmpTraps.2
	NameLinkDown              = "linkDown"                 // snmpTraps.3
	NameLinkUp                = "linkUp"                   // snmpTraps.4
	NameAuthenticationFailure = "authenticationFailure"    // snmpTraps.5
)

const (
	upsTraps       = "1.3.6.1.2.1.33.2"
	snmpTraps      = snmpagent.OIDSnmpTraps
	oidSysUpTime   = snmpagent.OIDSysUpTime
	oidSnmpTrapOID = snmpagent.OIDSnmpTrapOID
)

// WellKnownNames returns the notification OIDs the listener names without
// configuration (UPS-MIB traps and the generic SNMPv2 traps), mapped to
// their names. The map is a copy.
func WellKnownNames() map[string]string {
	return map[string]string{
		upsTraps + ".1":  NameUPSOnBattery,
		upsTraps + ".2":  NameUPSTestCompleted,
		upsTraps + ".3":  NameUPSAlarmEntryAdded,
		upsTraps + ".4":  NameUPSAlarmEntryRemoved,
		snmpTraps + ".1": NameColdStart,
		snmpTraps + ".2": NameWarmStart,
		snmpTraps + ".3": NameLinkDown,
		snmpTraps + ".4": NameLinkUp,
		snmpTraps + ".5": NameAuthenticationFailure,
	}
}

// v1TrapOID maps an SNMPv1 trap header to the SNMPv2 notification OID
// (RFC 3584 3.1): a generic trap g (0..5) is snmpTraps.(g+1), an
// enterprise-specific trap is enterprise.0.specific. ok is false for a
// generic trap number outside 0..6 or a negative specific trap.
func v1TrapOID(enterprise string, generic, specific int) (string, bool) {
	switch {
	case generic >= 0 && generic <= 5:
		return snmpTraps + "." + strconv.Itoa(generic+1), true
	case generic == 6 && specific >= 0:
		return enterprise + ".0." + strconv.Itoa(specific), true
	}
	return "", false
}
