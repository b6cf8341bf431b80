package loadshed

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/facgw/facgw/internal/alert"
)

// Record is one line of the audit log.
type Record struct {
	Time   time.Time `json:"time"`
	Policy string    `json:"policy"`
	// Episode is the trigger episode's id; every record of one shed
	// carries it.
	Episode string `json:"episode,omitempty"`
	// Event is what happened: see the Event* constants.
	Event string `json:"event"`
	// Operator is who armed, disarmed or inhibited ("config" for the
	// config file), or for a shed the arming it ran under.
	Operator string `json:"operator,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Inputs are the trigger's inputs with their quality.
	Inputs map[string]alert.Value `json:"inputs,omitempty"`
	// Stage is the stage index (0-based) of stage and action records.
	Stage *int `json:"stage,omitempty"`
	// Action is one write and its read-back.
	Action *Action `json:"action,omitempty"`
	// Plan is what a dry run would have done.
	Plan []PlanStage `json:"plan,omitempty"`
	// DryRun is set when nothing was written.
	DryRun bool `json:"dry_run,omitempty"`
	// Drain is the drain command a drain record sent, or the withdrawal
	// a drain-withdrawn record sent.
	Drain *DrainCommand `json:"drain,omitempty"`
	// Ack is the orchestrator's acknowledgement of a drain-ack record.
	Ack *DrainAck `json:"ack,omitempty"`
}

// Action is one load switched off: the write and its read-back.
type Action struct {
	Load   string  `json:"load"`
	Tier   string  `json:"tier"`
	Device string  `json:"device"`
	Point  string  `json:"point"`
	Index  string  `json:"index,omitempty"`
	Value  float64 `json:"value"`
	// Before is the verify point's reading before the write.
	Before *Reading `json:"before,omitempty"`
	// WriteError is why the write failed; empty when it succeeded.
	WriteError string `json:"write_error,omitempty"`
	// After is the last read-back.
	After *Reading `json:"after,omitempty"`
	// Verified is true when the read-back showed the off value in time.
	Verified bool `json:"verified"`
	// Skipped explains why a load was not written (already off in this
	// episode).
	Skipped string `json:"skipped,omitempty"`
}

// Reading is a read-back of the verify point.
type Reading struct {
	Point   string  `json:"point"`
	Value   float64 `json:"value"`
	Text    string  `json:"text,omitempty"`
	Quality string  `json:"quality"`
	Reason  string  `json:"reason,omitempty"`
	Want    float64 `json:"want"`
}

// Audit events.
const (
	EventArmed        = "armed"
	EventDisarmed     = "disarmed"
	EventArmExpired   = "arm-expired"
	EventInhibited    = "inhibited"
	EventReleased     = "inhibit-released"
	EventTriggered    = "triggered"
	EventDryRun       = "dry-run"
	EventRefused      = "refused"
	EventStage        = "stage"
	EventAction       = "action"
	EventShedFailed   = "shed-failed"
	EventCompleted    = "completed"
	EventCancelled    = "cancelled"
	EventResumed      = "resumed"
	EventTriggerEnded = "trigger-ended"
	// EventStateUnreadable: the state file could not be read at start and
	// was moved aside (its reason says where).
	EventStateUnreadable = "state-unreadable"
	// Drain stages.
	EventDrain          = "drain"
	EventDrainAck       = "drain-ack"
	EventDrainEscalated = "drain-escalated"
	EventDrainWithdrawn = "drain-withdrawn"
	// Automatic restore.
	EventRestoring      = "restore-started"
	EventRestoreAction  = "restore-action"
	EventRestoreFailed  = "restore-failed"
	EventRestored       = "restored"
	EventRestoreAborted = "restore-aborted"
)

// Results of a load in Shed.Done and RestoreState.Done.
const (
	ResultOff        = "off"
	ResultFailed     = "failed"
	ResultAlreadyOff = "already-off"
	ResultOn         = "on"
	// ResultLeftOff: a restore left the load off, not written: another
	// policy holds it off, or its state before the shed is unknown.
	ResultLeftOff = "left-off"
)

// auditLog appends records to a JSON-lines file, fsyncing each, and keeps
// the latest in memory for the API.
type auditLog struct {
	mu     sync.Mutex
	f      *os.File
	recent []Record
}

const recentMax = 200

func openAudit(dir string) (*auditLog, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("loadshed: audit: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "audit.jsonl"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("loadshed: audit: %w", err)
	}
	return &auditLog{f: f}, nil
}

// append writes one record and syncs it to disk before returning: an
// action that is not on disk did not happen, as far as a restart knows.
func (a *auditLog) append(r Record) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("loadshed: audit: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recent = append(a.recent, r)
	if len(a.recent) > recentMax {
		a.recent = a.recent[len(a.recent)-recentMax:]
	}
	if _, err := a.f.Write(append(b, '\n')); err != nil {
		return b, fmt.Errorf("loadshed: audit: %w", err)
	}
	if err := a.f.Sync(); err != nil {
		return b, fmt.Errorf("loadshed: audit: %w", err)
	}
	return b, nil
}

// latest returns up to n records, newest first.
func (a *auditLog) latest(n int) []Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Record, 0, min(n, len(a.recent)))
	for i := len(a.recent) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, a.recent[i])
	}
	return out
}

func (a *auditLog) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.f.Close()
}

// ReadAudit reads an audit log file, for tests and tools.
func ReadAudit(path string) ([]Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Record
	dec := json.NewDecoder(bytesReader(b))
	for dec.More() {
		var r Record
		if err := dec.Decode(&r); err != nil {
			return out, fmt.Errorf("loadshed: %s: %w", path, err)
		}
		out = append(out, r)
	}
	return out, nil
}
