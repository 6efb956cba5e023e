package sim

// What the writers of package output read from a Config and a Report that the rest of sim keeps
// unexported.

// WarmupText describes the warm-up for a report's header: "200 orders", "50ms", or both.
func (c Config) WarmupText() string { return c.warmupText() }

// DemandBasis is the number of orders the stock is sized for: Orders, or Rate × Duration for an
// open run by duration.
func (c Config) DemandBasis() float64 { return c.demandBasis() }

// MessageNames are the message types Chains.Messages counts, commands first, in the order
// reports list them. The slice is the caller's.
func MessageNames() []string { return append([]string(nil), msgNames[:]...) }
