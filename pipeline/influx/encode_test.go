package influx

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/facgw/facgw/internal/point"
)

var (
	t0 = time.Date(2024, 10, 15, 6, 30, 0, 123456789, time.UTC)
	t1 = t0.Add(250 * time.Millisecond)
)

// pt builds a good point of bms-rack1 at t0.
func pt(name string, kind point.Kind, num float64, str string) point.Point {
	return point.Point{Device: "bms-rack1", Name: name, Kind: kind, Num: num, Str: str, Time: t0, Quality: point.Good}
}

func with(p point.Point, f func(*point.Point)) point.Point { f(&p); return p }

func TestEncode(t *testing.T) {
	const ts = "1728973800123456789"
	tests := []struct {
		name        string
		site, gw    string
		measurement string
		pts         []point.Point
		want        string
	}{
		{
			name: "number", measurement: "battery", site: "pangyo-b3", gw: "gw-1",
			pts:  []point.Point{pt("battery.charge", point.Number, 97.5, "")},
			want: "battery,device=bms-rack1,gateway=gw-1,site=pangyo-b3 battery_charge=97.5 " + ts + "\n",
		},
		{
			name: "every kind in one line, fields in key order", measurement: "ups", site: "s", gw: "g",
			pts: []point.Point{
				pt("ups.status", point.Enum, 3, "on battery"),
				pt("output.on", point.Bool, 1, ""),
				pt("input.fault", point.Bool, 0, ""),
				pt("device.model", point.String, 0, "Smart-UPS 3000"),
				pt("output.voltage", point.Number, 230, ""),
			},
			want: `ups,device=bms-rack1,gateway=g,site=s device_model="Smart-UPS 3000",input_fault=false,output_on=true,output_voltage=230,ups_status=3 ` + ts + "\n",
		},
		{
			name: "floats", measurement: "m",
			pts: []point.Point{
				pt("a", point.Number, -0.25, ""),
				pt("b", point.Number, 1e21, ""),
				pt("c", point.Number, 1.5e-7, ""),
				pt("d", point.Number, 123456789012, ""),
				pt("e", point.Number, math.MaxFloat64, ""),
				pt("f", point.Number, 0, ""),
			},
			want: "m,device=bms-rack1 a=-0.25,b=1e+21,c=1.5e-07,d=123456789012,e=1.7976931348623157e+308,f=0 " + ts + "\n",
		},
		{
			name: "bad and stale points write their quality, never their value", measurement: "battery",
			pts: []point.Point{
				pt("cell.voltage.max", point.Number, 3.41, ""),
				with(pt("cell.temperature.max", point.Number, 600, ""), func(p *point.Point) {
					p.Quality, p.Reason = point.Bad, "out of range: 600 outside -40..150"
				}),
				with(pt("battery.soh", point.Number, 88, ""), func(p *point.Point) {
					p.Quality, p.Reason = point.Stale, point.ReasonStale
				}),
				with(pt("alarm.state", point.Enum, 2, "alarm"), func(p *point.Point) { p.Quality = point.Bad }),
				with(pt("fan.ok", point.Bool, 1, ""), func(p *point.Point) { p.Quality = point.Bad }),
				with(pt("fw", point.String, 0, "1.2"), func(p *point.Point) { p.Quality = point.Stale }),
			},
			want: `battery,device=bms-rack1 alarm_state_quality="bad",battery_soh_quality="stale",cell_temperature_max_quality="bad",cell_voltage_max=3.41,fan_ok_quality="bad",fw_quality="stale" ` + ts + "\n",
		},
		{
			name: "NaN and Inf are never written", measurement: "m",
			pts: []point.Point{
				pt("nan", point.Number, math.NaN(), ""),
				pt("inf", point.Number, math.Inf(1), ""),
				pt("ninf", point.Enum, math.Inf(-1), ""),
				pt("nanbool", point.Bool, math.NaN(), ""),
				with(pt("badnan", point.Number, math.NaN(), ""), func(p *point.Point) { p.Quality = point.Stale }),
				pt("ok", point.Number, 1, ""),
			},
			want: `m,device=bms-rack1 badnan_quality="stale",inf_quality="bad",nan_quality="bad",nanbool_quality="bad",ninf_quality="bad",ok=1 ` + ts + "\n",
		},
		{
			name: "escaping in measurement, tags and field keys", measurement: `ups, main=1\`, site: "site one", gw: `g=w,1`,
			pts: []point.Point{
				with(pt(`a b,c=d\e`, point.Number, 1, ""), func(p *point.Point) { p.Device = `rack 1,row=2\` }),
				with(pt(`"q"`, point.Number, 2, ""), func(p *point.Point) { p.Device = `rack 1,row=2\` }),
			},
			want: `ups\,\ main=1\\,device=rack\ 1\,row\=2\\,gateway=g\=w\,1,site=site\ one \"q\"=2,a\ b\,c\=d\\e=1 ` + ts + "\n",
		},
		{
			name: "escaping in string fields", measurement: "m",
			pts: []point.Point{
				pt("s", point.String, 0, `say "hi" \ bye\`),
				pt("t", point.String, 0, ""),
				pt("u", point.String, 0, "a,b c=d"),
			},
			want: `m,device=bms-rack1 s="say \"hi\" \\ bye\\",t="",u="a,b c=d" ` + ts + "\n",
		},
		{
			name: "newlines and invalid utf-8", measurement: "m\nx",
			pts: []point.Point{
				with(pt("n\r.x", point.String, 0, "line1\nline2\r"), func(p *point.Point) { p.Device = "d\xff\n" }),
			},
			want: "m\\ x,device=d\uFFFD\\  n\\ _x=\"line1\\nline2\\r\" " + ts + "\n",
		},
		{
			name: "unicode passes through", measurement: "cooling",
			pts:  []point.Point{with(pt("온도.공급", point.Number, 18.5, ""), func(p *point.Point) { p.Device = "항온항습기-1" })},
			want: "cooling,device=항온항습기-1 온도_공급=18.5 " + ts + "\n",
		},
		{
			name: "one line per device and time", measurement: "battery", gw: "gw-1",
			pts: []point.Point{
				pt("b", point.Number, 2, ""),
				with(pt("a", point.Number, 1, ""), func(p *point.Point) { p.Device = "bms-rack2" }),
				with(pt("c", point.Number, 3, ""), func(p *point.Point) { p.Time = t1 }),
				pt("a", point.Number, 4, ""),
			},
			want: "battery,device=bms-rack1,gateway=gw-1 a=4,b=2 " + ts + "\n" +
				"battery,device=bms-rack1,gateway=gw-1 c=3 1728973800373456789\n" +
				"battery,device=bms-rack2,gateway=gw-1 a=1 " + ts + "\n",
		},
		{
			name: "the last of duplicate fields wins", measurement: "m",
			pts: []point.Point{
				pt("x.y", point.Number, 1, ""),
				pt("x_y", point.Number, 2, ""),
				with(pt("z", point.Number, 1, ""), func(p *point.Point) { p.Quality = point.Bad }),
				pt("z_quality", point.String, 0, "from device"),
				pt("x.y", point.Number, 3, ""),
			},
			want: `m,device=bms-rack1 x_y=3,z_quality="from device" ` + ts + "\n",
		},
		{
			name: "field time is renamed", measurement: "m",
			pts: []point.Point{
				pt("time", point.Number, 1, ""),
				with(pt("time", point.Number, 1, ""), func(p *point.Point) { p.Device = "other"; p.Quality = point.Bad }),
			},
			want: "m,device=bms-rack1 time_=1 " + ts + "\nm,device=other time_quality=\"bad\" " + ts + "\n",
		},
		{
			name: "empty tags are left out, empty names skipped", measurement: "m",
			pts: []point.Point{
				with(pt("a", point.Number, 1, ""), func(p *point.Point) { p.Device = "" }),
				pt("", point.Number, 2, ""),
			},
			want: "m a=1 " + ts + "\n",
		},
		{
			name: "zero and unrepresentable times are written at now", measurement: "m",
			pts: []point.Point{
				with(pt("a", point.Number, 1, ""), func(p *point.Point) { p.Time = time.Time{} }),
				with(pt("b", point.Number, 2, ""), func(p *point.Point) { p.Time = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) }),
			},
			want: "m,device=bms-rack1 a=1,b=2 1700000000000000000\n",
		},
		{name: "nothing to write", measurement: "m", pts: []point.Point{pt("", point.Number, 1, "")}, want: ""},
		{name: "no points", measurement: "m", want: ""},
	}
	now := time.Unix(0, 1700000000000000000)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEncoder(tt.site, tt.gw)
			got, err := e.Append([]byte("prefix\n"), tt.measurement, tt.pts, now)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if got := string(got); got != "prefix\n"+tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, "prefix\n"+tt.want)
			}
			// Every golden line must also pass the strict parser.
			for _, line := range splitLines(string(got)[len("prefix\n"):]) {
				if _, err := parseLine(line); err != nil {
					t.Errorf("line %q does not parse: %v", line, err)
				}
			}
			// A second call with the same encoder gives the same bytes.
			again, _ := e.Append(nil, tt.measurement, tt.pts, now)
			if string(again) != tt.want {
				t.Errorf("second call: got %q, want %q", again, tt.want)
			}
		})
	}
}

func TestEncodeMeasurement(t *testing.T) {
	for _, m := range []string{"", "#ups"} {
		got, err := NewEncoder("", "").Append([]byte("x"), m, []point.Point{pt("a", point.Number, 1, "")}, t0)
		if !errors.Is(err, ErrMeasurement) {
			t.Errorf("measurement %q: got error %v, want ErrMeasurement", m, err)
		}
		if string(got) != "x" {
			t.Errorf("measurement %q: buffer changed to %q", m, got)
		}
	}
}

func TestCountFields(t *testing.T) {
	tests := []struct {
		in            string
		lines, fields int
	}{
		{"", 0, 0},
		{"m a=1 1\n", 1, 1},
		{"m a=1 1", 1, 1},
		{"m,t=a\\ b a=1,b=\"x, y=\\\" z\",c=true 1\nm b=2 2\n", 2, 4},
		{`m\,\ x,t\ =v\\ a\,b\ =1,c="\\" 1` + "\n", 1, 2},
	}
	for _, tt := range tests {
		lines, fields := countFields([]byte(tt.in))
		if lines != tt.lines || fields != tt.fields {
			t.Errorf("countFields(%q) = %d lines, %d fields, want %d, %d", tt.in, lines, fields, tt.lines, tt.fields)
		}
	}
}

// FuzzEncode checks that whatever the points, every line the encoder writes
// parses back (with a strict parser of the line protocol reference) to the
// measurement, tags, fields, values and timestamps the points say, and that
// no NaN or Inf and no value of a point that is not good is written.
func FuzzEncode(f *testing.F) {
	f.Add("ups", "site", "ups-1", "battery.charge|output.on|model", "APC", 97.5, uint8(0), int64(1728973800123456789))
	f.Add(`a,b c`, `s=1\`, "d\n\\", `x\|y=z|"q"|time|a.b|a_b`, "\"\\\n", math.NaN(), uint8(0x37), int64(-1))
	f.Add("#x", "", "", "", "", 0.0, uint8(0), int64(0))
	f.Add("m", "\xff", "\xfe", "\xfd|\xfc", "\xfb", math.Inf(-1), uint8(0xff), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, measurement, site, device, names, str string, num float64, kq uint8, ns int64) {
		now := time.Unix(0, 1700000000000000000)
		var pts []point.Point
		for i, name := range strings.Split(names, "|") {
			if i == 8 {
				break
			}
			p := point.Point{
				Device:  device,
				Name:    name,
				Kind:    point.Kind((int(kq) + i) % 5), // includes one unknown kind
				Num:     num * float64(i),
				Str:     str,
				Time:    time.Unix(0, ns+int64(i%2)),
				Quality: point.Quality((int(kq>>3) + i) % 4), // includes one unknown quality
			}
			if i%3 == 2 {
				p.Device += "2"
			}
			if i%4 == 3 {
				p.Time = time.Time{}
			}
			pts = append(pts, p)
		}
		got, err := NewEncoder(site, "gw").Append(nil, measurement, pts, now)
		if measurement == "" || measurement[0] == '#' {
			if !errors.Is(err, ErrMeasurement) || len(got) != 0 {
				t.Fatalf("measurement %q: got %q, %v, want ErrMeasurement", measurement, got, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		checkEncoding(t, string(got), measurement, site, "gw", pts, now)
	})
}

// checkEncoding parses out and compares it with what pts should give.
func checkEncoding(t *testing.T, out, measurement, site, gw string, pts []point.Point, now time.Time) {
	t.Helper()
	want := expectLines(measurement, site, gw, pts, now)
	lines := splitLines(out)
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	totalFields := 0
	for i, line := range lines {
		got, err := parseLine(line)
		if err != nil {
			t.Fatalf("line %q does not parse: %v", line, err)
		}
		if got.String() != want[i].String() {
			t.Fatalf("line %q\nparses as %s\nwant      %s", line, got, want[i])
		}
		totalFields += len(got.fields)
	}
	if n, f := countFields([]byte(out)); n != len(lines) || f != totalFields {
		t.Errorf("countFields = %d lines, %d fields, want %d, %d", n, f, len(lines), totalFields)
	}
}

// expectLines is a straightforward model of the encoding, written from the
// documentation rather than from the code.
func expectLines(measurement, site, gw string, pts []point.Point, now time.Time) []parsed {
	type group struct {
		device string
		ns     int64
	}
	var order []group
	fields := map[group]map[string]value{}
	for _, p := range pts {
		if p.Name == "" {
			continue
		}
		ns := now.UnixNano()
		if !p.Time.IsZero() && p.Time.After(time.Unix(0, math.MinInt64)) && p.Time.Before(time.Unix(0, math.MaxInt64)) {
			ns = p.Time.UnixNano()
		}
		g := group{p.Device, ns}
		if fields[g] == nil {
			fields[g] = map[string]value{}
			order = append(order, g)
		}
		key := strings.ReplaceAll(cleanName(p.Name), ".", "_")
		finite := p.Kind == point.String || !(math.IsNaN(p.Num) || math.IsInf(p.Num, 0))
		switch {
		case p.Quality != point.Good || !finite:
			q := p.Quality
			if q == point.Good {
				q = point.Bad
			}
			fields[g][key+"_quality"] = value{kind: 's', s: q.String()}
		case p.Kind == point.Bool:
			fields[g][timeKey(key)] = value{kind: 'b', b: p.Num != 0}
		case p.Kind == point.String:
			fields[g][timeKey(key)] = value{kind: 's', s: strings.ToValidUTF8(p.Str, "\uFFFD")}
		default:
			fields[g][timeKey(key)] = value{kind: 'f', f: p.Num}
		}
	}
	// Lines come sorted by device, then time.
	for i := 1; i < len(order); i++ {
		for j := i; j > 0; j-- {
			a, b := order[j-1], order[j]
			if a.device < b.device || a.device == b.device && a.ns <= b.ns {
				break
			}
			order[j-1], order[j] = b, a
		}
	}
	var out []parsed
	for _, g := range order {
		l := parsed{measurement: cleanName(measurement), ts: g.ns, fields: fields[g]}
		for _, kv := range [][2]string{{"device", g.device}, {"gateway", gw}, {"site", site}} {
			if kv[1] != "" {
				l.tags = append(l.tags, [2]string{kv[0], cleanName(kv[1])})
			}
		}
		out = append(out, l)
	}
	return out
}

func timeKey(k string) string {
	if k == "time" {
		return "time_"
	}
	return k
}

// cleanName is what a name becomes: valid UTF-8, newlines as spaces.
func cleanName(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(strings.ToValidUTF8(s, "\uFFFD"))
}

// A strict line-protocol parser, after the InfluxDB line protocol
// reference: it accepts only the escapes the reference defines and rejects
// anything ambiguous (unescaped separators in keys, empty keys or tag
// values, non-finite floats, a missing timestamp).

type value struct {
	kind byte // 'f', 'i', 'b', 's'
	f    float64
	i    int64
	b    bool
	s    string
}

func (v value) String() string {
	switch v.kind {
	case 'f':
		return strconv.FormatFloat(v.f, 'g', -1, 64)
	case 'i':
		return strconv.FormatInt(v.i, 10) + "i"
	case 'b':
		return strconv.FormatBool(v.b)
	}
	return strconv.Quote(v.s)
}

type parsed struct {
	measurement string
	tags        [][2]string
	fields      map[string]value
	ts          int64
}

// String renders a parsed line canonically (fields sorted) for comparison.
func (p parsed) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q", p.measurement)
	for _, t := range p.tags {
		fmt.Fprintf(&b, " %q=%q", t[0], t[1])
	}
	keys := make([]string, 0, len(p.fields))
	for k := range p.fields {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %q:%s", k, p.fields[k])
	}
	fmt.Fprintf(&b, " @%d", p.ts)
	return b.String()
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// splitLines splits line protocol into lines, checking the trailing newline.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	if !strings.HasSuffix(s, "\n") {
		return []string{s + "<missing newline>"}
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// scanName reads a measurement, tag key, tag value or field key from s,
// up to one of the unescaped stop bytes. escapable lists what may follow a
// backslash; other unescaped bytes in forbidden are errors.
func scanName(s string, stop, escapable, forbidden string) (name, rest string, err error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 == len(s) || !strings.ContainsRune(escapable, rune(s[i+1])) {
				return "", "", fmt.Errorf("bad escape at %d in %q", i, s)
			}
			i++
			b.WriteByte(s[i])
		case strings.IndexByte(stop, c) >= 0:
			return b.String(), s[i:], nil
		case strings.IndexByte(forbidden, c) >= 0:
			return "", "", fmt.Errorf("unescaped %q at %d in %q", c, i, s)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), "", nil
}

func parseLine(line string) (parsed, error) {
	var p parsed
	if strings.ContainsAny(line, "\n\r") {
		return p, errors.New("raw newline")
	}
	if !utf8.ValidString(line) {
		return p, errors.New("invalid utf-8")
	}
	if strings.HasPrefix(line, "#") {
		return p, errors.New("comment line")
	}
	m, rest, err := scanName(line, ", ", `, \`, "")
	if err != nil {
		return p, fmt.Errorf("measurement: %w", err)
	}
	if m == "" {
		return p, errors.New("empty measurement")
	}
	p.measurement = m
	for strings.HasPrefix(rest, ",") {
		k, r, err := scanName(rest[1:], "=", `,= \`, ", ")
		if err != nil || k == "" || r == "" {
			return p, fmt.Errorf("tag key in %q: empty or %v", rest, err)
		}
		v, r, err := scanName(r[1:], ", ", `,= \`, "=")
		if err != nil || v == "" {
			return p, fmt.Errorf("tag value in %q: empty or %v", r, err)
		}
		p.tags = append(p.tags, [2]string{k, v})
		rest = r
	}
	if !strings.HasPrefix(rest, " ") {
		return p, fmt.Errorf("no fields: %q", rest)
	}
	p.fields = map[string]value{}
	rest = rest[1:]
	for {
		k, r, err := scanName(rest, "=", `,= \"`, `, "`)
		if err != nil || k == "" || r == "" {
			return p, fmt.Errorf("field key in %q: empty or %v", rest, err)
		}
		if _, dup := p.fields[k]; dup {
			return p, fmt.Errorf("duplicate field %q", k)
		}
		var v value
		v, rest, err = parseValue(r[1:])
		if err != nil {
			return p, fmt.Errorf("field %q: %w", k, err)
		}
		p.fields[k] = v
		if strings.HasPrefix(rest, ",") {
			rest = rest[1:]
			continue
		}
		break
	}
	if !strings.HasPrefix(rest, " ") {
		return p, fmt.Errorf("no timestamp: %q", rest)
	}
	ts, err := strconv.ParseInt(rest[1:], 10, 64)
	if err != nil {
		return p, fmt.Errorf("timestamp: %w", err)
	}
	p.ts = ts
	return p, nil
}

func parseValue(s string) (value, string, error) {
	if strings.HasPrefix(s, `"`) {
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			switch c := s[i]; c {
			case '\\':
				if i+1 == len(s) {
					return value{}, "", errors.New("string ends in backslash")
				}
				i++
				switch s[i] {
				case '"', '\\':
					b.WriteByte(s[i])
				case 'n':
					b.WriteByte('\n')
				case 'r':
					b.WriteByte('\r')
				default:
					return value{}, "", fmt.Errorf("bad string escape %q", s[i-1:i+1])
				}
			case '"':
				return value{kind: 's', s: b.String()}, s[i+1:], nil
			default:
				b.WriteByte(c)
			}
		}
		return value{}, "", errors.New("unterminated string")
	}
	end := strings.IndexAny(s, ", ")
	if end < 0 {
		end = len(s)
	}
	tok, rest := s[:end], s[end:]
	switch tok {
	case "t", "T", "true", "True", "TRUE":
		return value{kind: 'b', b: true}, rest, nil
	case "f", "F", "false", "False", "FALSE":
		return value{kind: 'b', b: false}, rest, nil
	}
	if strings.HasSuffix(tok, "i") {
		i, err := strconv.ParseInt(tok[:len(tok)-1], 10, 64)
		return value{kind: 'i', i: i}, rest, err
	}
	if tok == "" || strings.ContainsAny(tok, "nNiIxX_") { // no NaN, Inf, hex or digit separators
		return value{}, "", fmt.Errorf("not a float: %q", tok)
	}
	f, err := strconv.ParseFloat(tok, 64)
	if err != nil {
		return value{}, "", err
	}
	return value{kind: 'f', f: f}, rest, nil
}

func TestParseLineRejects(t *testing.T) {
	for _, line := range []string{
		"m a=1",           // no timestamp
		"m a=NaN 1",       // not finite
		"m,t= a=1 1",      // empty tag value
		"m,t=a b=1 c=2 1", // field section parsed, trailing garbage
		`m,t=a\ a=1 1`,    // escaped space eats the separator
		"m a=\"x 1",       // unterminated
		"#m a=1 1",        // comment
		"m a=1,a=2 1",     // duplicate
		`m a\b=1 1`,       // undefined escape
		"m a=1 1\n",       // raw newline
	} {
		if p, err := parseLine(line); err == nil {
			t.Errorf("parseLine(%q) = %s, want an error", line, p)
		}
	}
}

// BenchmarkEncode encodes one poll of a 40-point device, the common case.
func BenchmarkEncode(b *testing.B) {
	pts := make([]point.Point, 40)
	for i := range pts {
		pts[i] = point.Point{Device: "bms-rack1", Name: fmt.Sprintf("cell.group%02d.voltage", i), Kind: point.Number,
			Num: 3.3 + float64(i)/1000, Time: t0, Quality: point.Good}
	}
	pts[5].Quality = point.Bad
	pts[6].Kind, pts[6].Num = point.Bool, 1
	pts[7].Kind, pts[7].Str = point.String, "ok"
	e := NewEncoder("pangyo-b3", "gw-1")
	var buf []byte
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = e.Append(buf[:0], "battery", pts, t0)
		n += len(pts)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "points/s")
	b.ReportMetric(float64(len(buf))/float64(len(pts)), "bytes/point")
}
