package sim

import (
	"context"
	"errors"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
)

// recorder is the mailer and the publisher the bus's handlers send through: the fakes, plus a
// record of every send in the log of the goroutine that made it. A send is a step of the sender's
// process: a goroutine whose process died cannot send (it panics, as it unwinds a request).
type recorder struct{ r *run }

func (m recorder) Send(ctx context.Context, mail service.Mail) error {
	a, start := m.begin(ctx, false)
	m.r.mailTries.Add(1)
	err := m.r.mailer.Send(ctx, mail)
	m.end(a, start, mail.Cause, false, err)
	return err
}

func (m recorder) Publish(ctx context.Context, channel string, e domain.Event) error {
	a, start := m.begin(ctx, true)
	err := m.r.publish(ctx, channel, e)
	m.end(a, start, e, true, err)
	return err
}

// begin starts a send on behalf of the actor in ctx (nil for none: the seeder), as a step of its
// process. A publication is timed only when the report has a broker section (its publish latency).
func (m recorder) begin(ctx context.Context, publish bool) (*actor, time.Duration) {
	a := actorOf(ctx)
	if a == nil {
		return nil, 0
	}
	if !m.r.enter(a) {
		panic(crashed{})
	}
	if publish && !m.r.broker.timed {
		return a, 0
	}
	return a, m.r.now()
}

// end records the send in the actor's log and ends the step.
func (m recorder) end(a *actor, start time.Duration, cause domain.Event, publish bool, err error) {
	if a == nil {
		return
	}
	r := m.r
	defer r.exit()
	at := sendAtDispatchEnd
	if !publish || start > 0 || a.w == nil || !a.w.untimedSends {
		at = r.now()
	}
	var id string
	if cause != nil {
		id = cause.Identity().ID
	}
	op := sendRec{at: at}
	flags := sendAccepted
	if err != nil {
		flags = sendErr
	}
	if publish {
		flags |= sendPublish
	} else {
		a.sendCount++ // the model's r counts requests that mailed
	}
	if !publish || start > 0 { // a publication is timed only with a broker report
		flags |= sendTimed
		a.took = append(a.took, at-start)
	}
	if err != nil {
		var te *fakes.TimeoutError
		switch {
		case errors.As(err, &te):
			flags |= sendTimeout
			if te.Delivered {
				flags |= sendAccepted
			}
		case errors.Is(err, service.ErrMailUnknown): // resolved from the server's record after the run
			flags |= sendTimeout | sendUnknown
		}
	}
	if flags&sendAccepted != 0 {
		r.release(id)
	}
	if err == nil && r.strategy.Durable() {
		r.sentUnmarked(id) // an outbox relay's send: the row waits for its mark
	}
	if stream, seq, ok := a.parseID(id); ok && stream <= sendStreamMask {
		op.seq, op.cause = seq, uint32(stream)|flags
	} else {
		op.cause = flags
		if a.foreign == nil {
			a.foreign = map[int]string{}
		}
		a.foreign[len(a.sends)] = id
	}
	if a.sends == nil && a.w != nil {
		a.sends = make([]sendRec, 0, a.w.share())
	}
	a.sends = append(a.sends, op)
}
