package domain

import "time"

// Message is anything the message bus handles: a Command or an Event.
type Message interface {
	Identity() Meta
}

// Command asks the system to do something. It has exactly one handler, and that handler's error
// reaches whoever sent it. Implementations are values that embed Meta.
type Command interface {
	Message
	// IsCommand marks the type as a command.
	IsCommand()
	// WithIdentity returns a copy of the command carrying m.
	WithIdentity(m Meta) Command
}

// Allocate asks for an order line to be allocated to the preferred batch.
type Allocate struct {
	Meta
	OrderID, SKU string
	Qty          int
}

// CreateBatch asks for a batch of stock to be added.
type CreateBatch struct {
	Meta
	Ref, SKU string
	Qty      int
	ETA      time.Time // zero: in the warehouse now
}

// ChangeBatchQuantity asks for a batch's purchased quantity to be set to Qty.
type ChangeBatchQuantity struct {
	Meta
	Ref string
	Qty int
}

// IsCommand marks Allocate as a command.
func (Allocate) IsCommand() {}

// IsCommand marks CreateBatch as a command.
func (CreateBatch) IsCommand() {}

// IsCommand marks ChangeBatchQuantity as a command.
func (ChangeBatchQuantity) IsCommand() {}

// WithIdentity returns a copy of the command carrying m.
func (c Allocate) WithIdentity(m Meta) Command { c.Meta = m; return c }

// WithIdentity returns a copy of the command carrying m.
func (c CreateBatch) WithIdentity(m Meta) Command { c.Meta = m; return c }

// WithIdentity returns a copy of the command carrying m.
func (c ChangeBatchQuantity) WithIdentity(m Meta) Command { c.Meta = m; return c }
