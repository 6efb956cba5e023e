package sim

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
)

// Mailer is what a run needs of its mailer: the service.Mailer the handlers send through, and
// the mail server's own record of what it took, which is the accounting's ground truth (a send
// that timed out may have been delivered; only the server knows). fakes.Mailer is its own mail
// server; an SMTP mailer reads the record of the server it sends to. Implementations must be
// safe for concurrent use. The run calls Mails, DedupHits and Stats after its last send.
type Mailer interface {
	service.Mailer
	// Mails returns the mails the server took, in the order it took them; a repeat it recognised
	// and dropped (see MailerSpec.Dedup) is not one of them.
	Mails() []Mail
	// DedupHits returns the cause event IDs of the repeats the server recognised and dropped, in
	// the order it dropped them.
	DedupHits() []string
	// Stats returns what the mailer's sends did so far, as the sender saw them: a mailer that
	// cannot know whether a timed-out send was delivered leaves TimedOutDelivered at 0, and the
	// run reads the answer from Mails and DedupHits.
	Stats() fakes.MailerStats
	// Heal stops every injected fault: later sends neither fail nor time out by the plan. The
	// run calls it when its liveness phase begins.
	Heal()
}

// MailerSpec is what a run asks of its mailer: its faults (all seeded by Seed) and whether the
// mail server de-duplicates.
type MailerSpec struct {
	Seed uint64
	// Latency is the time a send takes on the fakes; on a test SMTP server, the time the server
	// takes to reply to the mail's data, on top of the conversation.
	Latency Latency
	// ErrorRate is the probability that a send fails for now (an SMTP server's 451).
	ErrorRate float64
	// Timeout, when positive, makes the sender give up a send that takes longer: its outcome is
	// unknown. The server took such a mail anyway with probability TimeoutDelivered.
	Timeout          time.Duration
	TimeoutDelivered float64
	// Dedup makes the server take at most one mail per cause event (the outbox's de-duplication).
	Dedup bool
}

// MailerOpener opens a new mailer, with its mail server when it brings one, for one run (the
// runs of a comparison each get their own) and returns it with the function that closes it and
// what it started. Config.OpenMailer holds one; nil is the fake mailer.
type MailerOpener func(ctx context.Context, spec MailerSpec) (Mailer, func() error, error)

// mailerSpec is what cfg asks of the mailer.
func (c Config) mailerSpec() MailerSpec {
	return MailerSpec{Seed: uint64(c.Seed), Latency: c.Mailer, ErrorRate: c.MailErrors, Timeout: c.MailTimeout,
		TimeoutDelivered: c.TimeoutDelivered, Dedup: c.Strategy == Outbox && c.Dedup}
}

// mailerName is the mailer's name for reports: "fakes" when the run is on the fake mailer.
func (c Config) mailerName() string { return cmp.Or(c.MailerName, "fakes") }

// MailerLabel is the mailer's name for reports: "fakes" when the run is on the fake mailer.
func (c Config) MailerLabel() string { return c.mailerName() }

// RealMailer reports whether the run sends through a mailer other than the fake one.
func (c Config) RealMailer() bool { return c.OpenMailer != nil }

// MailerLine describes the mailer for a report's header.
func (c Config) MailerLine() string {
	switch {
	case !c.RealMailer():
		return c.Mailer.String()
	case c.NoMailFaults != "":
		return c.mailerName() + " (no faults injected)"
	}
	return c.mailerName() + ": an in-process SMTP server on 127.0.0.1 that replies to each mail's data after " + c.Mailer.String()
}

func (c Config) validateMailer() error {
	switch {
	case c.OpenMailer == nil && c.mailerName() != "fakes":
		return bad("mailer", "%q: no opener for this mailer in this command (the fakes-only simulator links no SMTP)", c.MailerName)
	case c.NoMailFaults == "":
		return nil
	case c.Mailer.Mean != 0 || c.Mailer.Max != 0:
		return bad("mailer-latency", "%s: %s", c.mailerName(), c.NoMailFaults)
	case c.MailErrors > 0:
		return bad("mail-errors", "%s: %s", c.mailerName(), c.NoMailFaults)
	case c.MailTimeout > 0 && c.TimeoutDelivered > 0:
		return bad("timeout-delivered", "%s: %s (-mail-timeout alone bounds each send)", c.mailerName(), c.NoMailFaults)
	case c.mailerSpec().Dedup:
		return bad("dedup", "%s: %s, nor make it drop repeats (outbox with -dedup=false runs)", c.mailerName(), c.NoMailFaults)
	}
	return nil
}

// openMailer opens the run's mailer: cfg's opener, or the fake mailer with the strategy's options.
func (r *run) openMailer(ctx context.Context) error {
	cfg := r.cfg
	if cfg.OpenMailer == nil {
		opts := []fakes.MailerOption{cfg.Mailer.option(), fakes.WithSeed(uint64(cfg.Seed)), fakes.KeepRecords()}
		if cfg.MailErrors > 0 {
			opts = append(opts, fakes.WithErrorRate(cfg.MailErrors))
		}
		if cfg.MailTimeout > 0 {
			opts = append(opts, fakes.WithTimeout(cfg.MailTimeout, cfg.TimeoutDelivered))
		}
		r.mailer = fakeMailer{fakes.NewMailer(append(opts, r.strategy.MailerOptions()...)...)}
		return nil
	}
	m, closeMailer, err := cfg.OpenMailer(ctx, cfg.mailerSpec())
	if err != nil {
		return err
	}
	r.mailer, r.closeMailer = m, closeMailer
	return nil
}

// fakeMailer is the fake mailer as a run's Mailer: its captured mails are what its mail server
// took.
type fakeMailer struct{ *fakes.Mailer }

func (m fakeMailer) Mails() []Mail {
	records := m.Records()
	if len(records) == 0 {
		return nil
	}
	out := make([]Mail, len(records))
	for i, ml := range records {
		out[i] = Mail{Event: ml.EventID, To: ml.To, Body: ml.Body}
	}
	return out
}

// resolveUnknown decides the sends whose outcome the sender did not learn (h.Sends with Timeout
// and no answer from the mailer, unknown[i] set) from the mail server's record: an event the
// server took more often (mails and recognised repeats) than its sends known to be accepted was
// taken through its unknown sends, the earliest first. It returns how many it found accepted.
func resolveUnknown(h *History, unknown []bool) int {
	taken := map[string]int{}
	for _, m := range h.Mails {
		taken[m.Event]++
	}
	for _, id := range h.DedupHits {
		taken[id]++
	}
	pending := map[string][]int{} // event ID -> indexes in h.Sends of its unknown sends
	for i, s := range h.Sends {
		switch {
		case s.Publish:
		case unknown[i]:
			pending[s.Event] = append(pending[s.Event], i)
		case s.Accepted:
			taken[s.Event]--
		}
	}
	n := 0
	for id, idx := range pending {
		slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(h.Sends[a].At, h.Sends[b].At) })
		for _, i := range idx[:min(max(taken[id], 0), len(idx))] {
			h.Sends[i].Accepted = true
			n++
		}
	}
	return n
}
