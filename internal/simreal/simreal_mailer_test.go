package simreal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/internal/simcli"
	"github.com/stockbus/stockbus/internal/simreal"
	"github.com/stockbus/stockbus/sim"
	"github.com/stockbus/stockbus/smtp"
	"github.com/stockbus/stockbus/smtp/smtptest"
)

// onSMTP puts cfg on the in-process SMTP server and returns a function that gives the record of
// the last run's server once the run has returned.
func onSMTP(t *testing.T, cfg *sim.Config) (record func() []smtptest.Message) {
	t.Helper()
	open, err := simreal.SMTP("")
	require.NoError(t, err)
	var srv *smtptest.Server
	cfg.MailerName = "smtp"
	cfg.OpenMailer = func(ctx context.Context, spec sim.MailerSpec) (sim.Mailer, func() error, error) {
		m, closeMailer, err := open(ctx, spec)
		if err == nil {
			srv = simreal.ServerOf(m)
		}
		return m, closeMailer, err
	}
	return func() []smtptest.Message {
		require.NotNil(t, srv, "the run opened no mailer")
		return srv.Messages()
	}
}

// serverEvents counts the server's messages of each outcome, and the events of those it delivered.
func serverEvents(t *testing.T, msgs []smtptest.Message) (outcomes map[smtptest.Outcome]int, delivered map[string]int) {
	t.Helper()
	outcomes, delivered = map[smtptest.Outcome]int{}, map[string]int{}
	for _, m := range msgs {
		outcomes[m.Outcome]++
		if m.Outcome == smtptest.Delivered {
			id, err := smtp.EventID(m.MessageID, smtp.DefaultDomain)
			require.NoError(t, err, "message %d", m.Index)
			delivered[id]++
		}
	}
	return outcomes, delivered
}

// mailSmall is a run small enough for -race over real SMTP, with more out-of-stock orders than
// the default (so more mails).
func mailSmall(strategy string) sim.Config {
	c := sim.Default()
	c.Orders, c.WarmupOrders, c.Workers, c.SKUs, c.Demand = 150, 10, 2, 3, 2
	c.Mailer, c.Strategy = sim.FixedLatency(0), strategy
	return c
}

// Without faults the run over SMTP is the run on the fakes: with one worker (no interleaving),
// the same history digest, every mail delivered once, and the server holding exactly the mails
// the accounting counted.
func TestSMTPRunIsTheFakeRun(t *testing.T) {
	for _, strategy := range []string{sim.Sync, sim.Outbox} {
		t.Run(strategy, func(t *testing.T) {
			c := mailSmall(strategy)
			c.Workers, c.Record = 1, true
			fake, err := sim.Run(context.Background(), c)
			require.NoError(t, err)
			record := onSMTP(t, &c)
			rep, err := sim.Run(context.Background(), c)
			require.NoError(t, err)
			requireInvariants(t, rep)

			assert.Equal(t, fake.HistoryDigest, rep.HistoryDigest, "orders, events, mails and the store as on the fakes")
			a := rep.Accounting
			oos := a.Kind(sim.KindOutOfStock)
			require.Positive(t, oos.Committed)
			assert.Zero(t, a.Lost)
			assert.Zero(t, a.Duplicated)
			outcomes, delivered := serverEvents(t, record())
			assert.Equal(t, map[smtptest.Outcome]int{smtptest.Delivered: oos.Committed}, outcomes)
			assert.Len(t, delivered, oos.Committed, "one mail per out-of-stock event")
			assert.Equal(t, int64(oos.Committed), rep.Counts.Mails)
			assert.Equal(t, int64(oos.Committed), rep.Mailer.Send.Count, "every send is timed")
			assert.Positive(t, rep.Mailer.Send.P50)
		})
	}
}

// With mail errors the server refuses some mails with 451: the accounting's counts are the
// server's record. Sync loses each refused mail's event; the outbox sends it again until the
// server takes it.
func TestSMTPMailErrorsAreTheServersRefusals(t *testing.T) {
	for _, strategy := range []string{sim.Sync, sim.Outbox} {
		t.Run(strategy, func(t *testing.T) {
			c := mailSmall(strategy)
			c.MailErrors = 0.3
			c.HoldFaults = 1 << 20 // until nothing is pending: the relay may start after the last order
			record := onSMTP(t, &c)
			rep, err := sim.Run(context.Background(), c)
			require.NoError(t, err)
			requireInvariants(t, rep)
			outcomes, delivered := serverEvents(t, record())
			refused := outcomes[smtptest.Refused]
			require.Positive(t, refused, "the seeded plan refused some mails")
			assert.Equal(t, int64(refused), rep.Faults.SendErrors, "each refusal is a failed send")
			assert.Equal(t, int64(refused), rep.Counts.SendErrors)
			oos := rep.Accounting.Kind(sim.KindOutOfStock)
			assert.Equal(t, len(delivered), oos.Delivered, "delivered is what the server delivered")
			assert.Equal(t, outcomes[smtptest.Delivered], int(rep.Counts.Mails))
			switch strategy {
			case sim.Sync:
				assert.Equal(t, refused, oos.Lost, "sync does not send a refused mail again")
				assert.Equal(t, refused, rep.Accounting.LostSendFailed)
			case sim.Outbox:
				assert.Zero(t, rep.Accounting.Lost)
				assert.Equal(t, oos.Committed, len(delivered))
			}
		})
	}
}

// Once the faults end the healed server takes every mail: the outbox drains even when every send
// before was refused. (A server that stayed faulty would hold the run until the safety net below
// interrupts it.)
func TestSMTPHealedServerLetsTheOutboxDrain(t *testing.T) {
	c := mailSmall(sim.Outbox)
	c.MailErrors, c.HoldFaults = 1, 10 // the faults last for 10 sends at least, however late the relay starts
	record := onSMTP(t, &c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := sim.Run(ctx, c)
	require.NoError(t, err)
	require.False(t, rep.Interrupted, "the outbox did not drain")
	requireInvariants(t, rep)
	outcomes, delivered := serverEvents(t, record())
	assert.Positive(t, outcomes[smtptest.Refused], "every send of the fault phase was refused")
	oos := rep.Accounting.Kind(sim.KindOutOfStock)
	assert.Equal(t, oos.Committed, len(delivered))
	assert.Zero(t, rep.Accounting.Lost)
}

// With a timeout the server's slow replies make the sender give up: after the server took the
// mail or before it was sent. The server's record decides which: what it delivered is every
// mail whose send succeeded plus the timed-out sends the run found delivered.
func TestSMTPTimeoutsAreDecidedByTheServersRecord(t *testing.T) {
	c := mailSmall(sim.Sync)
	c.Orders, c.Workers = 60, 1
	c.MailTimeout, c.TimeoutDelivered = 100*time.Millisecond, 0.5
	// Half the replies come at once, half a second late: well past the timeout.
	c.Mailer = sim.Latency{Dist: "uniform", Min: 0, Max: time.Second, Mean: 500 * time.Millisecond}
	record := onSMTP(t, &c)
	rep, err := sim.Run(context.Background(), c)
	require.NoError(t, err)
	requireInvariants(t, rep)
	_, delivered := serverEvents(t, record())

	var ok, timedOut, timedOutTaken int
	for _, s := range rep.History.Sends {
		switch {
		case s.Publish:
		case !s.Err:
			ok++
		case s.Timeout:
			timedOut++
			if s.Accepted {
				timedOutTaken++
			}
		}
	}
	require.Positive(t, timedOut, "replies later than the timeout")
	assert.Equal(t, int64(timedOut), rep.Faults.Timeouts)
	assert.Equal(t, int64(timedOutTaken), rep.Faults.TimeoutsDelivered)
	assert.Equal(t, len(delivered), ok+timedOutTaken, "the server delivered the sends that succeeded and the timed-out ones found delivered")
	oos := rep.Accounting.Kind(sim.KindOutOfStock)
	assert.Equal(t, len(delivered), oos.Delivered)
	assert.Equal(t, oos.Committed-len(delivered), oos.Lost)
}

// A server the simulator did not start: nothing injected, the accounting counts the mails it
// acknowledged.
func TestSMTPExternalServer(t *testing.T) {
	srv, err := smtptest.Start(smtptest.Config{})
	require.NoError(t, err)
	defer func() { assert.NoError(t, srv.Close()) }()
	var out, errOut bytes.Buffer
	args := []string{"-mailer", "smtp://" + srv.Addr(), "-compare", "sync,outbox", "-dedup=false", "-format", "json",
		"-orders", "100", "-warmup", "10", "-workers", "2", "-skus", "3", "-demand", "2"}
	code := simcli.Run(context.Background(), simreal.Adapters(), args, &out, &errOut, false)
	require.Equal(t, 0, code, "stderr: %s", errOut.String())
	var got struct {
		Runs []struct {
			Config     sim.Config
			Counts     struct{ Mails int64 }
			Accounting struct{ Lost int }
		}
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	require.Len(t, got.Runs, 2)
	var mails int64
	for _, r := range got.Runs {
		assert.Equal(t, "smtp://"+srv.Addr(), r.Config.MailerName)
		assert.Zero(t, r.Accounting.Lost, "%s", r.Config.Strategy)
		assert.Zero(t, r.Config.Mailer.Mean, "no latency injected")
		mails += r.Counts.Mails
	}
	assert.Equal(t, len(srv.Delivered()), int(mails), "the mails the server took are the mails counted")
}

func TestSMTPCommandLine(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		out  []string
	}{
		{"compare sync and outbox", []string{"-mailer", "smtp", "-compare", "sync,outbox"}, 0,
			[]string{"mailer send p50 / p99", "dispatch share", "mailer smtp: an in-process SMTP server on 127.0.0.1"}},
		{"with mail errors", []string{"-mailer", "smtp", "-strategy", "sync", "-mail-errors", "0.2"}, 0,
			[]string{"mailer send", "send errors"}},
		{"with a store", []string{"-mailer", "smtp", "-store", "sqlite", "-strategy", "sync"}, 0,
			[]string{"store sqlite", "mailer send"}},
		{"unknown mailer", []string{"-mailer", "pigeon"}, 2, []string{"-mailer: unknown mailer \"pigeon\""}},
		{"URL without a port", []string{"-mailer", "smtp://mail.example"}, 2, []string{"-mailer:", "want smtp://host:port"}},
		{"external server, mail errors", []string{"-mailer", "smtp://127.0.0.1:1", "-strategy", "sync", "-mail-errors", "0.1"}, 2,
			[]string{"-mail-errors:", simreal.ExternalNoFaults}},
		{"external server, a latency", []string{"-mailer", "smtp://127.0.0.1:1", "-strategy", "sync", "-mailer-latency", "5ms"}, 2,
			[]string{"-mailer-latency:", simreal.ExternalNoFaults}},
		{"external server, timeouts delivered", []string{"-mailer", "smtp://127.0.0.1:1", "-strategy", "sync", "-mail-timeout", "1s", "-timeout-delivered", "0.5"}, 2,
			[]string{"-timeout-delivered:"}},
		{"external server, outbox de-duplicating", []string{"-mailer", "smtp://127.0.0.1:1", "-strategy", "outbox"}, 2,
			[]string{"-dedup:", "-dedup=false"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"-orders", "100", "-warmup", "10", "-workers", "2", "-mailer-latency", "0"}, tt.args...)
			code := simcli.Run(context.Background(), simreal.Adapters(), args, &out, &errOut, false)
			assert.Equal(t, tt.code, code, "stdout: %s\nstderr: %s", out.String(), errOut.String())
			for _, want := range tt.out {
				assert.Contains(t, out.String()+errOut.String(), want)
			}
			if tt.code == 2 {
				assert.Empty(t, out.String(), "nothing ran")
			}
		})
	}
}
