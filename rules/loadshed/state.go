package loadshed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/diskfile"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// StateVersion is the format version of the state file. A file without
// one was written before versions existed and is read as version 1.
const StateVersion = 1

// persisted is the controller's durable state: arming and the progress of
// sheds, per policy. It is replaced atomically (write, fsync, rename).
type persisted struct {
	Version  int                     `json:"version"`
	Policies map[string]*policyState `json:"policies"`
}

// policyState is one policy's durable state.
type policyState struct {
	Arming *Arming `json:"arming,omitempty"`
	// Inhibit is set while an engineer inhibits the policy.
	Inhibit *Arming `json:"inhibit,omitempty"`
	// Shed is the shed in progress or the last one.
	Shed *Shed `json:"shed,omitempty"`
	// Watch is the trigger episode the controller decided on (dry run,
	// refusal, inhibit or shed) and has not yet seen end, with what it
	// decided. After a restart it is put back into the engine under its
	// id, so the same episode is neither audited nor alerted twice, and
	// a completed shed does not start over.
	Watch *Watch `json:"watch,omitempty"`
}

// Watch is a trigger episode in progress and the decisions made on it.
type Watch struct {
	Trigger   alert.Event `json:"trigger"`
	DryRun    string      `json:"dry_run,omitempty"`
	Refused   string      `json:"refused,omitempty"`
	Inhibited string      `json:"inhibited,omitempty"`
}

// DrainState is a drain command sent to the orchestrator and its answer.
type DrainState struct {
	ID       string    `json:"id"`
	Stage    int       `json:"stage"`
	Scope    string    `json:"scope"`
	SentAt   time.Time `json:"sent_at"`
	Deadline time.Time `json:"deadline"`
	// AckedAt is when the first acknowledgement arrived; later ones of
	// the same id (from the other brokers, or repeated) are ignored.
	AckedAt    time.Time `json:"acked_at,omitzero"`
	AckBy      string    `json:"ack_by,omitempty"`
	AckStatus  string    `json:"ack_status,omitempty"`
	AckMessage string    `json:"ack_message,omitempty"`
	AckVia     string    `json:"ack_via,omitempty"`
	// Escalated is set when the stage went on without an acknowledgement
	// (timeout) or with a failed one.
	Escalated bool `json:"escalated,omitempty"`
	// Withdrawn is set when the command was withdrawn before its stage
	// ran (the shed cancelled, or paused by an inhibit): answers to it
	// are ignored and it never escalates.
	Withdrawn      bool      `json:"withdrawn,omitempty"`
	WithdrawnAt    time.Time `json:"withdrawn_at,omitzero"`
	WithdrawReason string    `json:"withdraw_reason,omitempty"`
}

// RestoreState is the progress of a restore: automatic (restore_when
// held) or manual (an engineer through the API).
type RestoreState struct {
	// Episode is the restore_when episode of an automatic restore; empty
	// for a manual one.
	Episode string `json:"episode,omitempty"`
	// Manual is set for a restore an engineer started; By and Reason say
	// who and why.
	Manual    bool      `json:"manual,omitempty"`
	By        string    `json:"by,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	StartedAt time.Time `json:"started_at"`
	// NextStage counts the shed's stages already restored, from the last.
	NextStage int         `json:"next_stage"`
	StageAt   []time.Time `json:"stage_at,omitempty"`
	// Done maps each load handled to "on" (verified), "failed" or
	// "left-off" (held off by another policy, or prior state unknown).
	Done   map[string]string `json:"done,omitempty"`
	Ended  time.Time         `json:"ended,omitzero"`
	Result string            `json:"result,omitempty"`
}

// Arming records who armed (or inhibited) a policy, why and until when.
type Arming struct {
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
	// Until is when an arming through the API expires; zero: never (the
	// config's armed: true).
	Until time.Time `json:"until,omitzero"`
}

// Shed is the progress of one shed episode.
type Shed struct {
	Episode string `json:"episode"`
	// Trigger is the trigger's firing event, put back into the engine
	// after a restart so the shed continues only while it still holds.
	Trigger   alert.Event `json:"trigger"`
	StartedAt time.Time   `json:"started_at"`
	// NextStage is the index of the first stage not yet completed.
	NextStage int `json:"next_stage"`
	// StageAt is when each completed stage finished.
	StageAt []time.Time `json:"stage_at,omitempty"`
	// Done maps each load already handled in this episode to its result
	// ("off" verified, or "failed"): a resumed stage skips them.
	Done map[string]string `json:"done,omitempty"`
	// Ended is set once the episode is over: completed or cancelled.
	Ended  time.Time `json:"ended,omitzero"`
	Result string    `json:"result,omitempty"`
	// Drains are the drain commands of the shed's drain stages.
	Drains []*DrainState `json:"drains,omitempty"`
	// Carried are loads an earlier shed switched off and nothing switched
	// on again: found off, they count as this shed's ("off"), so an
	// automatic restore switches them back on.
	Carried []string `json:"carried,omitempty"`
	// PriorUnknown are loads the shed wrote (off or failed) without
	// reading them on first (the reading bad, stale or missing, or not
	// the on value): they may have been off before, so a restore leaves
	// them off.
	PriorUnknown []string `json:"prior_unknown,omitempty"`
	// Restore is the automatic restore of the loads switched off.
	Restore *RestoreState `json:"restore,omitempty"`
}

// drain returns the latest drain command of a stage, nil if none was
// sent.
func (s *Shed) drain(stage int) *DrainState {
	var out *DrainState
	for _, d := range s.Drains {
		if d.Stage == stage {
			out = d
		}
	}
	return out
}

// drains counts the drain commands sent for a stage.
func (s *Shed) drains(stage int) int {
	n := 0
	for _, d := range s.Drains {
		if d.Stage == stage {
			n++
		}
	}
	return n
}

const stateFile = "state.json"

// loadState reads the state file. One it cannot read (not JSON, or
// written by a newer facgw) is moved aside, never deleted, to moved, and
// the controller starts without it: aside then says what happened and
// where the file went (the controller logs and audits it). Without the
// state an engineer's inhibit would be lost and a policy armed in the
// config could shed again, so the controller then starts every policy
// inhibited until an engineer checks and releases it. err is an I/O
// error: the directory cannot be read or the file not moved.
func loadState(dir string, now time.Time) (st *persisted, moved string, aside, err error) {
	st = &persisted{Version: StateVersion, Policies: map[string]*policyState{}}
	path := filepath.Join(dir, stateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, "", nil, nil
	}
	if err != nil {
		return nil, "", nil, fmt.Errorf("loadshed: state: %w", err)
	}
	var got persisted
	why := json.Unmarshal(b, &got)
	if why == nil && got.Version > StateVersion {
		why = fmt.Errorf("format version %d, newer than this facgw reads (%d)", got.Version, StateVersion)
	}
	if why != nil {
		moved = fmt.Sprintf("%s.unreadable-%s", path, now.UTC().Format("20060102T150405Z"))
		if err := os.Rename(path, moved); err != nil {
			return nil, "", nil, fmt.Errorf("loadshed: state %s unreadable (%v) and not moved aside: %w", path, why, err)
		}
		return st, moved, fmt.Errorf("loadshed: state %s unreadable (%v): moved to %s; sheds in progress start over, every policy starts inhibited", path, why, moved), nil
	}
	if got.Policies != nil {
		st.Policies = got.Policies
	}
	return st, "", nil, nil
}

// save replaces the state file atomically and durably.
func (st *persisted) save(dir string) error {
	st.Version = StateVersion
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("loadshed: state: %w", err)
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := diskfile.WriteSync(tmp, b, 0o640); err != nil {
		return fmt.Errorf("loadshed: state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("loadshed: state: %w", err)
	}
	_ = diskfile.SyncDir(dir) // the rename happened; the next save syncs again
	return nil
}
