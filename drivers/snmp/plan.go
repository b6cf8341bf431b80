package snmp

import (
	profiles "github.com/facgw/facgw/firmware-profiles"
)

// OIDs the driver reads besides the profile's.
const (
	sysUpTimeOID   = "1.3.6.1.2.1.1.3.0" // TimeTicks; backwards means the agent restarted
	sysObjectIDOID = "1.3.6.1.2.1.1.2.0"
)

// entity sensor columns, relative to the entPhySensorEntry a sensor:
// entity point walks (RFC 3433; CISCO-ENTITY-SENSOR-MIB has the same).
const (
	entType      = ".1"
	entScale     = ".2"
	entPrecision = ".3"
	entValue     = ".4"
	entStatus    = ".5"
)

// groupPlan is what one poll group reads: the scalar instances to GET and
// the columns to walk, each once however many points use it.
type groupPlan struct {
	points []profiles.PointDef
	// scalars are the instance OIDs in first-use order; with counters in
	// the group, sysUpTime too, to notice agent restarts.
	scalars []string
	// columns are the column OIDs to walk: value columns, row label
	// columns and the columns of sensor: entity points.
	columns []string
	// counters says the group has counter points (and so rates).
	counters bool
}

// planGroups splits resolved points into poll groups and plans each.
// only, when not empty, keeps just the named points (definition names; a
// counter's rate name keeps its counter).
func planGroups(pts []profiles.PointDef, only []string) map[string]*groupPlan {
	keep := map[string]bool{}
	for _, n := range only {
		keep[n] = true
	}
	groups := map[string]*groupPlan{}
	for _, p := range pts {
		if len(keep) > 0 && !keep[p.Name] && !(p.IsCounter() && keep[p.Name+profiles.RateSuffix]) {
			continue
		}
		name := p.Group
		if name == "" {
			name = "default"
		}
		g := groups[name]
		if g == nil {
			g = &groupPlan{}
			groups[name] = g
		}
		g.points = append(g.points, p)
	}
	for _, g := range groups {
		g.plan()
	}
	return groups
}

func (g *groupPlan) plan() {
	seenS, seenC := map[string]bool{}, map[string]bool{}
	addS := func(oid string) {
		if !seenS[oid] {
			seenS[oid] = true
			g.scalars = append(g.scalars, oid)
		}
	}
	addC := func(oid string) {
		if oid != "" && !seenC[oid] {
			seenC[oid] = true
			g.columns = append(g.columns, oid)
		}
	}
	for i := range g.points {
		p := &g.points[i]
		if p.IsCounter() {
			g.counters = true
		}
		switch {
		case p.OID != "":
			addS(p.OID)
		case p.Sensor == profiles.SensorEntity:
			for _, c := range []string{entValue, entType, entScale, entPrecision, entStatus} {
				addC(p.Walk + c)
			}
			addC(p.RowLabel)
		default:
			addC(p.Walk)
			addC(p.RowLabel)
		}
	}
	if g.counters {
		addS(sysUpTimeOID)
	}
}
