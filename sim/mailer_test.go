package sim_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sim"
)

// lossyMailer is a mailer whose sender loses the reply of some sends, as an SMTP client does on
// a timeout: of every three sends, the first goes through, the second reaches the server and
// reports an unknown outcome, the third reports an unknown outcome and never reached the server.
// Its server is a fake mailer; it counts what it did, and stops losing replies once healed.
type lossyMailer struct {
	*fakes.Mailer
	spec                 sim.MailerSpec
	n, taken, lost, heal atomic.Int64
	closed               *atomic.Int64
}

var errReplyLost = fmt.Errorf("test: the reply was lost: %w", service.ErrMailUnknown)

func (m *lossyMailer) Send(ctx context.Context, mail service.Mail) error {
	if m.heal.Load() > 0 {
		return m.Mailer.Send(ctx, mail)
	}
	switch m.n.Add(1) % 3 {
	case 2:
		if err := m.Mailer.Send(ctx, mail); err != nil {
			return err
		}
		m.taken.Add(1)
		return errReplyLost
	case 0:
		m.lost.Add(1)
		return errReplyLost
	}
	return m.Mailer.Send(ctx, mail)
}

func (m *lossyMailer) Mails() []sim.Mail {
	var out []sim.Mail
	for _, ml := range m.Mailer.Mails() {
		out = append(out, sim.Mail{Event: ml.Cause.Identity().ID, To: ml.To, Body: ml.Body})
	}
	return out
}

func (m *lossyMailer) Heal() { m.heal.Add(1) }

// lossyOpener opens lossy mailers and keeps the last one.
func lossyOpener(last **lossyMailer, closed *atomic.Int64) sim.MailerOpener {
	return func(_ context.Context, spec sim.MailerSpec) (sim.Mailer, func() error, error) {
		var opts []fakes.MailerOption
		if spec.Dedup {
			opts = append(opts, fakes.WithDedup())
		}
		m := &lossyMailer{Mailer: fakes.NewMailer(opts...), spec: spec, closed: closed}
		*last = m
		return m, func() error { closed.Add(1); return nil }, nil
	}
}

// The server's record decides a send whose outcome the sender did not learn: taken, it counts as
// accepted (and delivered); not taken, its event is lost to a failed send.
func TestUnknownOutcomesAreResolvedFromTheServersRecord(t *testing.T) {
	for _, tc := range []struct {
		strategy  string
		wantDedup bool
	}{
		{sim.Sync, false},
		{sim.Outbox, true},
	} {
		t.Run(tc.strategy, func(t *testing.T) {
			var m *lossyMailer
			var closed atomic.Int64
			cfg := tiny()
			cfg.Strategy, cfg.Workers = tc.strategy, 1
			cfg.HoldFaults = 1 << 20 // until nothing is pending: the relay may start after the last order
			cfg.MailerName, cfg.OpenMailer = "lossy", lossyOpener(&m, &closed)
			rep := run(t, cfg)
			require.NotNil(t, m)
			assert.Equal(t, tc.wantDedup, m.spec.Dedup, "the outbox's server de-duplicates, sync's does not")
			assert.Equal(t, int64(1), closed.Load(), "the run's mailer is closed once (the calibration runs on the fakes)")
			assert.Equal(t, int64(1), m.heal.Load(), "the liveness phase heals the mailer")
			require.Positive(t, m.taken.Load())
			require.Positive(t, m.lost.Load())

			h := rep.History
			var timedOutAccepted int64
			for _, s := range h.Sends {
				if s.Timeout && s.Accepted {
					timedOutAccepted++
				}
			}
			assert.Equal(t, m.taken.Load(), timedOutAccepted, "sends the server took, among those that lost their reply")
			assert.Equal(t, m.taken.Load(), rep.Faults.TimeoutsDelivered)
			a := rep.Accounting
			assert.Equal(t, len(h.Mails), int(rep.Counts.Mails))
			switch tc.strategy {
			case sim.Sync: // no retry: a send the server did not take loses its event
				assert.Equal(t, int(m.lost.Load()), a.Kind(sim.KindOutOfStock).Lost)
				assert.Equal(t, int(m.lost.Load()), a.LostSendFailed)
				assert.Zero(t, a.Resends)
			case sim.Outbox: // the relay sends again until a reply comes: the server drops the repeats
				assert.Zero(t, a.Lost)
				assert.Zero(t, a.Duplicated)
				assert.Equal(t, int(m.taken.Load()), a.Resends, "each taken send whose reply was lost is sent again")
				assert.Equal(t, int(m.taken.Load()), len(h.DedupHits))
				requireOK(t, rep)
			}
		})
	}
}

func TestMailerOpenerErrorStopsTheRun(t *testing.T) {
	cfg := tiny()
	cfg.MailerName = "broken"
	cfg.OpenMailer = func(context.Context, sim.MailerSpec) (sim.Mailer, func() error, error) {
		return nil, nil, errors.New("no server")
	}
	_, err := sim.Run(context.Background(), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "open the mailer broken: no server")
}

func TestMailerSettingsAreValidated(t *testing.T) {
	opener := func(context.Context, sim.MailerSpec) (sim.Mailer, func() error, error) {
		return nil, nil, errors.New("not opened")
	}
	external := func(c *sim.Config) {
		c.MailerName, c.OpenMailer, c.NoMailFaults = "smtp://mail:25", opener, "cannot inject into someone else's server"
		c.Mailer = sim.FixedLatency(0)
	}
	tests := []struct {
		name  string
		edit  func(*sim.Config)
		field string // "" when valid
	}{
		{"a mailer without an opener", func(c *sim.Config) { c.MailerName = "smtp" }, "mailer"},
		{"in-process server takes every fault", func(c *sim.Config) {
			c.MailerName, c.OpenMailer = "smtp", opener
			c.MailErrors, c.MailTimeout = 0.1, 1
		}, ""},
		{"external server, no fault", external, ""},
		{"external server, a timeout alone", func(c *sim.Config) { external(c); c.MailTimeout, c.TimeoutDelivered = 1, 0 }, ""},
		{"external server, a latency", func(c *sim.Config) { external(c); c.Mailer = sim.FixedLatency(1) }, "mailer-latency"},
		{"external server, mail errors", func(c *sim.Config) { external(c); c.MailErrors = 0.1 }, "mail-errors"},
		{"external server, timeouts delivered", func(c *sim.Config) { external(c); c.MailTimeout, c.TimeoutDelivered = 1, 0.5 }, "timeout-delivered"},
		{"external server, outbox with dedup", func(c *sim.Config) { external(c); c.Strategy, c.Dedup = sim.Outbox, true }, "dedup"},
		{"external server, outbox without dedup", func(c *sim.Config) { external(c); c.Strategy, c.Dedup = sim.Outbox, false }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tiny()
			tt.edit(&c)
			err := c.Validate()
			if tt.field == "" {
				assert.NoError(t, err)
				return
			}
			var ce *sim.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tt.field, ce.Field, "error: %v", err)
		})
	}
}

func TestCommandNamesTheMailer(t *testing.T) {
	c := tiny()
	assert.NotContains(t, c.Command(), "-mailer ")
	c.MailerName = "smtp"
	assert.Contains(t, c.Command(), "./cmd/simulate-real ")
	assert.Contains(t, c.Command(), "-mailer smtp")
}
