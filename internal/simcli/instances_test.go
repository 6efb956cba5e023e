package simcli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim/httpload"
)

const pgServer = "postgres://u@127.0.0.1:1/postgres"

var tinyInstances = []string{"-instances", "2", "-store", pgServer, "-orders", "200", "-skus", "3", "-warmup", "10", "-workers", "2"}

// runner is an InstancesRunner that records its runs and answers with report's result.
type runner struct {
	mu     sync.Mutex
	runs   []InstancesRun
	report func(InstancesRun) (*InstancesReport, error)
}

func (r *runner) run(_ context.Context, run InstancesRun) (*InstancesReport, error) {
	r.mu.Lock()
	r.runs = append(r.runs, run)
	r.mu.Unlock()
	return r.report(run)
}

// exactReport is the report of a run whose accounting holds: under sync one mail lost, under
// the outbox none.
func exactReport(run InstancesRun) (*InstancesReport, error) {
	mail := EventTally{Type: "OutOfStock", Receiver: "mail", Committed: 2, Delivered: 1, Lost: 1}
	if run.Strategy == "outbox" {
		mail.Delivered, mail.Lost, mail.Duplicated = 2, 0, 1
	}
	return &InstancesReport{Strategy: run.Strategy, Instances: []string{"api1", "api2"}, Load: &httpload.Report{Targets: []string{"http://a", "http://b"}},
		Events: []EventTally{{Type: "Allocated", Receiver: "stream", Committed: 3, Delivered: 3}, mail}}, nil
}

func instances(t *testing.T, r *runner, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ad := Adapters{}
	if r != nil {
		ad.Instances = r.run
	}
	code = Run(context.Background(), ad, args, &out, &errOut, false)
	return code, out.String(), errOut.String()
}

func TestInstancesBadInputExitsTwoNamingTheFlagAndStartsNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		flag string
	}{
		{"no store", []string{"-instances", "2", "-orders", "50"}, "-store"},
		{"a sqlite store", []string{"-instances", "2", "-store", "sqlite", "-orders", "50"}, "-store"},
		{"no instance", append(append([]string{}, tinyInstances...), "-instances", "0"), "-instances"},
		{"a kill after the last order", append(append([]string{}, tinyInstances...), "-kill-after", "200"), "-kill-after"},
		{"a negative kill", append(append([]string{}, tinyInstances...), "-kill-after", "-1"), "-kill-after"},
		{"a kill without instances", []string{"-orders", "50", "-kill-after", "10"}, "-kill-after"},
		{"a strategy cmd/api lacks", append(append([]string{}, tinyInstances...), "-strategy", "async"), "-strategy"},
		{"a comparison cmd/api lacks", append(append([]string{}, tinyInstances...), "-compare", "sync,sync-retry"), "-compare"},
		{"no relay", append(append([]string{}, tinyInstances...), "-relays", "0"), "-relays"},
		{"a mailer", append(append([]string{}, tinyInstances...), "-mailer", "smtp"), "-mailer"},
		{"a broker", append(append([]string{}, tinyInstances...), "-broker", "nats"), "-broker"},
		{"a target", append(append([]string{}, tinyInstances...), "-target", "http://127.0.0.1:1"), "-target"},
		{"a crash", append(append([]string{}, tinyInstances...), "-crash", "after-commit=0.1"), "-crash"},
		{"a duration", append(append([]string{}, tinyInstances...), "-duration", "1s"), "-duration"},
		{"the bench format", append(append([]string{}, tinyInstances...), "-format", "bench"), "-format"},
		{"more workers than orders", append(append([]string{}, tinyInstances...), "-workers", "500"), "-workers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &runner{report: exactReport}
			code, out, errOut := instances(t, r, tc.args...)
			assert.Equal(t, exitUsage, code, "stderr: %s", errOut)
			assert.Empty(t, out)
			assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
			assert.Contains(t, errOut, tc.flag)
			assert.Empty(t, r.runs, "nothing started")
		})
	}
	t.Run("cmd/simulate", func(t *testing.T) {
		code, _, errOut := instances(t, nil, tinyInstances...)
		assert.Equal(t, exitUsage, code)
		assert.Contains(t, errOut, "-instances")
		assert.Contains(t, errOut, RealCommand)
	})
	t.Run("the runner refuses", func(t *testing.T) {
		r := &runner{report: func(InstancesRun) (*InstancesReport, error) {
			return nil, fmt.Errorf("%w: no", ErrInstancesConfig)
		}}
		code, _, errOut := instances(t, r, tinyInstances...)
		assert.Equal(t, exitUsage, code)
		assert.Contains(t, errOut, "bad -instances run")
	})
}

func TestInstancesRunsEachStrategyOnItsOwn(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"by default sync and outbox", nil, []string{"sync", "outbox"}},
		{"one strategy", []string{"-strategy", "outbox"}, []string{"outbox"}},
		{"a comparison", []string{"-compare", "outbox,sync"}, []string{"outbox", "sync"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &runner{report: exactReport}
			code, out, errOut := instances(t, r, append(append([]string{}, tinyInstances...), append(tc.args, "-kill-after", "50", "-relays", "3")...)...)
			require.Equal(t, exitOK, code, "stderr: %s", errOut)
			require.Len(t, r.runs, len(tc.want))
			for i, run := range r.runs {
				assert.Equal(t, tc.want[i], run.Strategy)
				assert.Equal(t, 2, run.Instances)
				assert.Equal(t, pgServer, run.Server)
				assert.Equal(t, 3, run.Relays)
				assert.Equal(t, 50, run.KillAfter)
				assert.Equal(t, 200, run.Orders)
				assert.Empty(t, run.Load.Targets, "the runner's instances are the targets")
				require.NotNil(t, run.Load.Closed)
				assert.Equal(t, 2, run.Load.Closed.Workers)
			}
			assert.Equal(t, len(tc.want), strings.Count(out, "stockbus simulate -instances 2"), "a report per strategy:\n%s", out)
			assert.Contains(t, out, "OutOfStock   mail")
		})
	}
}

func TestInstancesNotExactExitsOne(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(*InstancesReport)
		says   string
	}{
		{"a phantom", func(r *InstancesReport) { r.Phantoms = []string{"ev-x"} }, "never committed"},
		{"a lost answered order", func(r *InstancesReport) { r.LostAnswered = 1 }, "lost events of answered orders"},
		{"delivered and lost do not add up", func(r *InstancesReport) { r.Events[0].Delivered-- }, "Allocated: 3 committed, 2 delivered + 0 lost"},
		{"a loss under the outbox", func(r *InstancesReport) { r.Strategy = "outbox" }, "lost under the outbox"},
		{"a pending row", func(r *InstancesReport) { r.Pending = 2 }, "2 outbox rows pending"},
		{"an ID logged twice", func(r *InstancesReport) { r.LogRepeats = 1 }, "logged twice"},
		{"the servers' stats missing", func(r *InstancesReport) { r.Load.StatsError = "server stats: gone" }, "server stats: gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &runner{report: func(run InstancesRun) (*InstancesReport, error) {
				rep, _ := exactReport(run)
				tc.break_(rep)
				return rep, nil
			}}
			code, out, errOut := instances(t, r, append(append([]string{}, tinyInstances...), "-strategy", "sync")...)
			assert.Equal(t, exitBroken, code)
			assert.Contains(t, out, "stockbus simulate -instances 2", "the report comes first")
			assert.Contains(t, errOut, tc.says)
		})
	}
}

func TestInstancesJSONHoldsEveryRun(t *testing.T) {
	r := &runner{report: exactReport}
	code, out, errOut := instances(t, r, append(append([]string{}, tinyInstances...), "-format", "json")...)
	require.Equal(t, exitOK, code, "stderr: %s", errOut)
	var rep struct {
		Seed int64 `json:"seed"`
		Runs []struct {
			Strategy string `json:"strategy"`
			Events   []struct {
				Type string `json:"type"`
				Lost int    `json:"lost"`
			} `json:"events"`
			Load struct {
				Targets []string `json:"targets"`
			} `json:"load"`
		} `json:"runs"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep), "%s", out)
	assert.EqualValues(t, 42, rep.Seed)
	require.Len(t, rep.Runs, 2)
	assert.Equal(t, "sync", rep.Runs[0].Strategy)
	assert.Equal(t, "outbox", rep.Runs[1].Strategy)
	assert.Equal(t, 1, rep.Runs[0].Events[1].Lost)
	assert.Len(t, rep.Runs[0].Load.Targets, 2)
}

func TestInstancesOpenModel(t *testing.T) {
	r := &runner{report: exactReport}
	code, _, errOut := instances(t, r, append(append([]string{}, tinyInstances...), "-strategy", "sync", "-model", "open", "-rate", "500", "-backlog", "50", "-seed", "9")...)
	require.Equal(t, exitOK, code, "stderr: %s", errOut)
	require.Len(t, r.runs, 1)
	run := r.runs[0]
	assert.Nil(t, run.Load.Closed)
	require.NotNil(t, run.Load.Open)
	assert.InDelta(t, 500, run.Load.Open.Rate, 0)
	assert.Equal(t, 50, run.Load.Open.Backlog)
	assert.EqualValues(t, 9, run.Load.Open.Seed)
	assert.EqualValues(t, 9, run.Seed, "the seed chooses the victim")
}
