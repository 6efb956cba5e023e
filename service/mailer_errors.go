package service

import (
	"context"
	"errors"
)

// The categories of a failed send. Every Mailer's errors should satisfy errors.Is with at most
// one of them, so that a relay or a retry policy can act on a send's failure without knowing the
// mailer: a transient failure is worth another attempt, a permanent one is not, and after an
// unknown outcome the mail may or may not have been delivered (another attempt may duplicate it;
// a receiver that drops repeats of one event makes that safe). A send stopped because its context
// ended returns the context's error, alone or beside ErrMailUnknown when the mail may already
// have been handed over.
var (
	// ErrMailTransient: the receiver refused the mail for now (an SMTP 4xx reply) or could not be
	// reached; nothing was delivered.
	ErrMailTransient = errors.New("mail refused for now")
	// ErrMailPermanent: the receiver refused the mail for good (an SMTP 5xx reply) or the mail
	// cannot be sent as it is; nothing was delivered and sending it again will not help.
	ErrMailPermanent = errors.New("mail refused for good")
	// ErrMailUnknown: the sender gave up waiting (a timeout, a dropped connection) after the mail
	// was handed over, so it may have been delivered.
	ErrMailUnknown = errors.New("mail outcome unknown")
)

// MailRetryable reports whether sending the mail again may help after a send failed with err:
// false for nil, for an error of the send's own context (context.Canceled,
// context.DeadlineExceeded) and for ErrMailPermanent; true for ErrMailTransient, ErrMailUnknown
// and any error that has no category, as Retry's default does. It fits RetryPolicy.Retryable.
func MailRetryable(err error) bool {
	switch {
	case err == nil,
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, ErrMailPermanent):
		return false
	}
	return true
}
