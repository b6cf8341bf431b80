// Package rules is facgw's alert rules engine: rule packs in YAML, with
// conditions written in expr-lang expressions over the latest points of a
// device (or of a group of devices), evaluated whenever those points arrive.
//
// Loading (Load, LoadFiles, Shipped) decodes a pack strictly, compiles every
// expression and template once and reports every problem of a file together,
// each located by file:line:col and field ("rules[2].when"). Check lints a
// rule set against the firmware profiles: a point name that no selected
// profile has is reported with a did-you-mean.
//
// The Engine holds one instance per rule and device (or per rule and group
// of devices, for rules with group_by) and runs the state machine inactive,
// pending, firing, resolved in the manner of Prometheus' alerting rules,
// with one difference that matters for a fire system: data can be unknown.
// A condition that read a bad, stale or missing point is unknown, not
// false. Unknown never resolves an alert; the rule's missing setting says
// whether it holds the instance where it is or fires (fail-safe, marked
// SupervisionLost).
//
// Evaluation is driven by points: Feed takes one poll's batch of a device
// and evaluates the instances that read any point of it, with the batch's
// point time as the time of the evaluation, so replaying recorded data gives
// the same alerts as the live gateway. Tick completes for and keep_firing_for
// durations of instances that no new point reaches (a device gone silent).
//
// A condition can read another rule's alert with firing("pack/name") (for
// the same device or group) or firing_any. The state comes from an
// AlertState: the engine's own instances by default (Engine implements
// it, lock-free), or another engine's (the load-shed triggers read the
// gateway's rules engine). CheckReferences checks the names read against
// a rule set; an unknown state is unknown in the three-valued logic.
//
// The rule language is documented for operators in docs/rules.md; a test
// compiles every example there.
package rules
