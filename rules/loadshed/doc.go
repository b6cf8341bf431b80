// Package loadshed is facgw's automatic load shed: policies whose trigger
// (a condition in the rule language, compiled and evaluated by package
// rules) switches off loads tier by tier, in ordered stages, through the
// drivers' write side, verifying every write by reading the outlet back.
//
// Safety comes first, in this order:
//   - Every policy is disarmed unless the config or an engineer arms it; a
//     disarmed policy whose trigger holds does a dry run: it records and
//     publishes the plan it would execute and writes nothing.
//   - An inhibited policy writes nothing either, armed or not.
//   - A trigger only counts when every input it read is of good quality;
//     a trigger that held on bad, stale or missing data (the rule fired
//     with SupervisionLost) or read any input that is not good is refused,
//     audited and alerted, never acted on.
//   - Stages run in order, each after its delay and no sooner than
//     min_stage_interval after the previous stage of any policy.
//   - Each load is written once per episode and only ever switched off;
//     its progress is persisted (fsync) before the next write, so a
//     restart neither repeats nor forgets a stage. Restoring is manual
//     (or restore: auto), and a restore never switches on a load another
//     policy holds off or whose state before the shed is unknown.
//   - A state file that cannot be read at start is moved aside and every
//     policy starts inhibited until an engineer releases it.
//   - Every write is followed by read-backs until the verify point shows
//     the off value or verify_timeout passes; a mismatch is audited and
//     alerted as a failed shed, not taken as success.
//
// Everything the controller decides is appended to an audit log (JSON
// lines, fsynced) in its state directory, handed to a publish function
// (the gateway publishes it on MQTT under <prefix>/<gateway>/loadshed/) and
// raised as alert events of class power, rule loadshed/<policy>.
package loadshed
