package point

// Unit is a unit symbol from facgw's one vocabulary (docs/units.md). Profiles
// may use only these; conversion from device units (0.1 V, binary points,
// degF) happens in the profile's scale and offset so every consumer sees
// the same unit for the same quantity.
type Unit string

// The unit vocabulary.
const (
	None       Unit = ""     // dimensionless: states, enums, counts
	Celsius    Unit = "degC" // temperature
	Volt       Unit = "V"
	Ampere     Unit = "A"
	Watt       Unit = "W"
	Kilowatt   Unit = "kW"
	VoltAmpere Unit = "VA"
	KiloVA     Unit = "kVA"
	Hertz      Unit = "Hz"
	Percent    Unit = "%"   // load, state of charge, state of health, fan speed
	PercentRH  Unit = "%RH" // relative humidity
	Second     Unit = "s"
	Minute     Unit = "min"
	PPM        Unit = "ppm" // gas concentration
	RPM        Unit = "rpm"
	Pascal     Unit = "Pa"
	KiloPascal Unit = "kPa"
	AmpHour    Unit = "Ah"
	KWh        Unit = "kWh"
	ObscPerM   Unit = "%obs/m" // aspirating smoke detector obscuration
	LitrePerS  Unit = "L/s"
	Millivolt  Unit = "mV"
	CelsiusPM  Unit = "degC/min" // rate of rise
)

// Units lists every unit of the vocabulary with what it measures, in the
// order docs/units.md shows them.
var Units = []struct {
	Unit Unit
	What string
}{
	{None, "dimensionless: states, enums, counts"},
	{Celsius, "temperature, degrees Celsius"},
	{CelsiusPM, "rate of temperature change, degrees Celsius per minute"},
	{Volt, "voltage, volts (AC RMS or DC)"},
	{Millivolt, "small voltages such as cell spread, millivolts"},
	{Ampere, "current, amperes"},
	{Watt, "real power, watts"},
	{Kilowatt, "real power, kilowatts"},
	{VoltAmpere, "apparent power, volt-amperes"},
	{KiloVA, "apparent power, kilovolt-amperes"},
	{Hertz, "frequency, hertz"},
	{Percent, "percent of a whole: load, state of charge, state of health, fan speed, valve position"},
	{PercentRH, "relative humidity, percent"},
	{Second, "duration, seconds"},
	{Minute, "duration, minutes (UPS runtime)"},
	{PPM, "gas concentration, parts per million by volume"},
	{RPM, "rotational speed, revolutions per minute"},
	{Pascal, "pressure, pascals (differential air pressure)"},
	{KiloPascal, "pressure, kilopascals (water, refrigerant)"},
	{AmpHour, "charge, ampere-hours"},
	{KWh, "energy, kilowatt-hours"},
	{ObscPerM, "smoke obscuration, percent per metre"},
	{LitrePerS, "flow, litres per second"},
}

// Known reports whether u is in the vocabulary.
func (u Unit) Known() bool {
	for _, k := range Units {
		if k.Unit == u {
			return true
		}
	}
	return false
}
