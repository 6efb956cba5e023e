package steps

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cucumber/godog"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// stageUnderWhen ends the meaning of every step that sets the stage under any keyword.
const stageUnderWhen = " Under When it is the same: it sets the stage, does not start the count \"from the first When step on\", and keeps no error (a rejection fails the step)."

const whenArriving = "[in the warehouse|arriving today|arriving tomorrow|arriving later]"

// vocabulary is every step, in the order the README lists them.
var vocabulary = []Def{
	// Stock.
	{
		Group: "Stock", Keyword: "*", Text: `a batch "<ref>" of <qty> "<sku>" ` + whenArriving,
		Meaning: "Adds a batch through the service layer; it must be accepted. Today is a fixed date; later is 11 days on." + stageUnderWhen,
		Example: `Given a batch "in-stock-batch" of 100 "RETRO-CLOCK" in the warehouse`,
		Func:    givenBatch,
	},
	{
		Group: "Stock", Keyword: "*", Text: `these batches:`,
		Meaning: "Adds the batches in the table's order. Columns: batch, qty, sku, eta (warehouse, today, tomorrow or later)." + stageUnderWhen,
		Example: "Given these batches:\n| batch | qty | sku | eta |\n| medium | 100 | MINIMALIST-SPOON | tomorrow |",
		Func:    givenBatches,
	},
	{
		Group: "Stock", Keyword: "*", Text: `order "<order>" of <qty> "<sku>" has been allocated`,
		Meaning: "Allocates through the service layer; it must succeed." + stageUnderWhen,
		Example: `Given order "order1" of 10 "SMALL-FORK" has been allocated`,
		Func:    givenAllocated,
	},
	{
		Group: "Stock", Keyword: "Given", Text: `the product "<sku>" is at version <version>`,
		Meaning: "Stores the product's version number as given (the product must exist).",
		Example: `Given the product "LAMP" is at version 7`,
		Func:    givenVersion,
	},

	// A batch on its own.
	{
		Group: "A batch on its own", Keyword: "*", Text: `a batch "<ref>" of <qty> "<sku>" on its own`,
		Meaning: "Makes a batch outside any product and store (the domain's Batch alone, as the book's batch tests use it), for the steps of this group. Nothing is validated, stored or published.",
		Example: `Given a batch "batch-001" of 20 "SMALL-TABLE" on its own`,
		Func:    givenLoneBatch,
	},
	{
		Group: "A batch on its own", Keyword: "*", Text: `batch "<ref>" on its own allocates order "<order>" of <qty> "<sku>"`,
		Meaning: "Allocates the line to the batch on its own; a line that does not fit, or of another sku, is silently left out.",
		Example: `When batch "batch-001" on its own allocates order "order-ref" of 2 "SMALL-TABLE"`,
		Func:    whenLoneAllocates,
	},
	{
		Group: "A batch on its own", Keyword: "*", Text: `batch "<ref>" on its own deallocates order "<order>" of <qty> "<sku>"`,
		Meaning: "Deallocates the line from the batch on its own; a line the batch does not hold is silently ignored.",
		Example: `When batch "batch-001" on its own deallocates order "order-ref" of 2 "SMALL-TABLE"`,
		Func:    whenLoneDeallocates,
	},
	{
		Group: "A batch on its own", Keyword: "Then", Text: `batch "<ref>" on its own [can|cannot] take order "<order>" of <qty> "<sku>"`,
		Meaning: "Whether the batch on its own can allocate the line (the line is valid, of the batch's sku, and fits in what is available).",
		Example: `Then batch "batch-001" on its own cannot take order "order-ref" of 2 "EXPENSIVE-TOASTER"`,
		Func:    thenLoneCanTake,
	},
	{
		Group: "A batch on its own", Keyword: "Then", Text: `batch "<ref>" on its own has <n> available`,
		Meaning: "The available quantity of the batch on its own.",
		Example: `Then batch "batch-001" on its own has 18 available`,
		Func:    thenLoneAvailable,
	},
	{
		Group: "A batch on its own", Keyword: "Then", Text: `batch "<ref>" on its own [holds|does not hold] order "<order>"`,
		Meaning: "Whether the batch on its own holds a line of that order.",
		Example: `Then batch "batch-001" on its own does not hold order "order-ref"`,
		Func:    thenLoneHolds,
	},

	// The stack.
	{
		Group: "The stack", Keyword: "*", Text: `the bus [propagates|collects] handler errors`,
		Meaning: "Error policy of the bus. propagates (the default, the book's chapter 8): the first handler error stops the call. collects (chapter 10): every handler runs and all errors come back together." + stageUnderWhen,
		Example: `Given the bus collects handler errors`,
		Func:    givenPolicy,
	},
	{
		Group: "The stack", Keyword: "*", Text: `conflicting commits are retried up to <n> [time|times]`,
		Meaning: "Retry budget of the unit of work for concurrent updates; 0 never retries. The default is the service layer's (10)." + stageUnderWhen,
		Example: `Given conflicting commits are retried up to 0 times`,
		Func:    givenRetries,
	},
	{
		Group: "The stack", Keyword: "*", Text: `conflicting commits are retried without limit`,
		Meaning: "The unit of work retries concurrent updates until it commits." + stageUnderWhen,
		Example: `Given conflicting commits are retried without limit`,
		Func:    givenUnlimitedRetries,
	},
	{
		Group: "The stack", Keyword: "*", Text: `the mailer is down`,
		Meaning: "Every mail the out-of-stock handler sends fails, so that handler returns an error." + stageUnderWhen,
		Example: `Given the mailer is down`,
		Func:    givenMailerDown,
	},
	{
		Group: "The stack", Keyword: "*", Text: `a [working|failing|panicking] handler "<name>" for ` + eventChoice + ` events`,
		Meaning: "Subscribes a handler after the ones already there (the stack's own come first: the out-of-stock mail, the publication of Allocated, the reallocation of a Deallocated line). A working one does nothing, a failing one returns an error, a panicking one panics. Note is an event that exists only in these specs." + stageUnderWhen,
		Example: `Given a failing handler "audit" for OutOfStock events`,
		Func:    givenHandler,
	},
	{
		Group: "The stack", Keyword: "*", Text: `a handler "<name>" for Note events that raises:`,
		Meaning: "Subscribes a handler that, on each note named in column on, hands the bus the notes listed in column raises (comma separated), in that order." + stageUnderWhen,
		Example: "Given a handler \"relay\" for Note events that raises:\n| on | raises |\n| A  | B, C   |",
		Func:    givenRaisingHandler,
	},
	{
		Group: "The stack", Keyword: "*", Text: `a handler "<name>" for Note events that, on note "<note>", allocates order "<order>" of <qty> "<sku>"`,
		Meaning: "Subscribes a handler that allocates through the service layer while the bus is handling that note; running out of stock is not a failure of this handler." + stageUnderWhen,
		Example: `Given a handler "clerk" for Note events that, on note "first", allocates order "o1" of 1 "LAMP"`,
		Func:    givenAllocatingHandler,
	},
	{
		Group: "The stack", Keyword: "*", Text: `a handler "<name>" for OutOfStock events that looks at the store`,
		Meaning: "Subscribes a handler that notes, each time it runs, which orders the store holds for the event's sku." + stageUnderWhen,
		Example: `Given a handler "witness" for OutOfStock events that looks at the store`,
		Func:    givenWitness,
	},

	// Interference.
	{
		Group: "Other writers", Keyword: "Given", Text: `another writer changes "<sku>" before every commit`,
		Meaning: "From the first When step on, every commit that would store the product finds it changed since it was loaded, so it conflicts.",
		Example: `Given another writer changes "LAMP" before every commit`,
		Func:    givenAnotherWriter,
	},
	{
		Group: "Other writers", Keyword: "Given", Text: `<n> writers load "<sku>" before any of them commits`,
		Meaning: "From the first When step on, the first n units of work that load the product wait before committing until all n have loaded: the interleaving is forced, not left to the scheduler.",
		Example: `Given 2 writers load "LAMP" before any of them commits`,
		Func:    givenHeldWriters,
	},

	// Actions.
	{
		Group: "Actions", Keyword: "When", Text: `I allocate order "<order>" of <qty> "<sku>"`,
		Meaning: "Allocates through the service layer and keeps what it returned.",
		Example: `When I allocate order "o1" of 10 "POPULAR-CURTAINS"`,
		Func:    whenAllocate,
	},
	{
		Group: "Actions", Keyword: "When", Text: `I add a batch "<ref>" of <qty> "<sku>" ` + whenArriving,
		Meaning: "Adds a batch through the service layer and keeps the error, if any.",
		Example: `When I add a batch "b2" of -1 "LAMP" in the warehouse`,
		Func:    whenAddBatch,
	},
	{
		Group: "Actions", Keyword: "When", Text: `one unit of work allocates:`,
		Meaning: "Allocates every line of the table (columns order, qty, sku) in one unit of work, loading each product when first named, and commits; out of stock does not stop it.",
		Example: "When one unit of work allocates:\n| order | qty | sku |\n| b1 | 5 | B |",
		Func:    whenUnitOfWork,
	},
	{
		Group: "Actions", Keyword: "When", Text: `one unit of work allocates, then [fails|panics]:`,
		Meaning: "Like the step above, but the work then returns an error or panics instead of letting the unit of work commit.",
		Example: "When one unit of work allocates, then fails:\n| order | qty | sku |\n| o1 | 1 | LAMP |",
		Func:    whenUnitOfWorkFails,
	},
	{
		Group: "Actions", Keyword: "When", Text: `a later unit of work loads "<sku>" and commits without changes`,
		Meaning: "Runs a unit of work that only loads the product.",
		Example: `When a later unit of work loads "LAMP" and commits without changes`,
		Func:    whenLoadOnly,
	},
	{
		Group: "Actions", Keyword: "When", Text: `<writers> writers send <orders> orders of <qty> "<sku>" at the same time`,
		Meaning: "Runs that many goroutines that share the orders (order-1, order-2, ...) between them, each through the service layer. Fails if they have not finished within 30 seconds.",
		Example: `When 8 writers send 1000 orders of 1 "HOT-SKU" at the same time`,
		Func:    whenWriters,
	},
	{
		Group: "Actions", Keyword: "When", Text: `the bus handles note "<name>"`,
		Meaning: "Hands one Note to the bus and keeps the error, if any.",
		Example: `When the bus handles note "A"`,
		Func:    whenBusHandles,
	},
	{
		Group: "Actions", Keyword: "When", Text: `I change the quantity of batch "<ref>" to <qty>`,
		Meaning: "Sends a ChangeBatchQuantity command on the bus, so it is the first message the bus handles, and keeps the error, if any. Lines that no longer fit are deallocated, most recent first, and allocated again before the step ends.",
		Example: `When I change the quantity of batch "batch1" to 25`,
		Func:    whenChangeQuantity,
	},
	{
		Group: "Actions", Keyword: "When", Text: `the service layer changes the quantity of batch "<ref>" to <qty>`,
		Meaning: "Calls the service layer's entry point ChangeBatchQuantity, which runs the command's handler without sending the command on the bus (the chain starts with the events it records), and keeps the error, if any.",
		Example: `When the service layer changes the quantity of batch "batch1" to 0`,
		Func:    whenServiceChangesQuantity,
	},

	// What the caller is told.
	{
		Group: "What the caller is told", Keyword: "Then", Text: `the allocation returns batch "<ref>"`,
		Meaning: "The last allocation succeeded and returned that batch reference.",
		Example: `Then the allocation returns batch "in-stock-batch"`,
		Func:    thenReturnsBatch,
	},
	{
		Group: "What the caller is told", Keyword: "Then", Text: `it succeeds`,
		Meaning: "The last When step returned no error.",
		Example: `Then it succeeds`,
		Func:    thenSucceeds,
	},
	{
		Group: "What the caller is told", Keyword: "Then", Text: `I am told "<sku>" is out of stock`,
		Meaning: "The last allocation returned no batch and an out-of-stock error that names the sku.",
		Example: `Then I am told "POPULAR-CURTAINS" is out of stock`,
		Func:    thenToldOutOfStock,
	},
	{
		Group: "What the caller is told", Keyword: "Then", Text: `I am told "<text>"`,
		Meaning: "The error of the last When step contains the text.",
		Example: `Then I am told "invalid sku NONEXISTENTSKU"`,
		Func:    thenTold,
	},
	{
		Group: "What the caller is told", Keyword: "Then", Text: `it fails with ` + failureChoice(),
		Meaning: "The error of the last When step is of that kind (errors.Is on the service layer's and the domain's errors).",
		Example: `Then it fails with exhausted retries`,
		Func:    thenFailsWith,
	},
	{
		Group: "What the caller is told", Keyword: "Then", Text: `<n> [order was|orders were] allocated`,
		Meaning: "Counts the allocations of the last When step that returned a batch.",
		Example: `Then 500 orders were allocated`,
		Func:    thenCountAllocated,
	},
	{
		Group: "What the caller is told", Keyword: "Then", Text: `<n> [order was|orders were] told it is out of stock`,
		Meaning: "Counts the allocations of the last When step that returned an out-of-stock error.",
		Example: `Then 500 orders were told it is out of stock`,
		Func:    thenCountOutOfStock,
	},
	{
		Group: "What the caller is told", Keyword: "Then", Text: `<n> [order was|orders were] told of a concurrent update`,
		Meaning: "Counts the allocations of the last When step that gave up on a concurrent update.",
		Example: `Then 1 order was told of a concurrent update`,
		Func:    thenCountConflicts,
	},

	// The store.
	{
		Group: "The store", Keyword: "Then", Text: `batch "<ref>" has <n> available`,
		Meaning: "The stored batch's available quantity.",
		Example: `Then batch "in-stock-batch" has 90 available`,
		Func:    thenAvailable,
	},
	{
		Group: "The store", Keyword: "Then", Text: `batch "<ref>" holds <n> [order|orders]`,
		Meaning: "How many order lines the stored batch holds.",
		Example: `Then batch "batch1" holds 2 orders`,
		Func:    thenHoldsCount,
	},
	{
		Group: "The store", Keyword: "Then", Text: `batch "<ref>" holds order "<order>"`,
		Meaning: "The stored batch holds a line of that order.",
		Example: `Then batch "b1" holds order "o1"`,
		Func:    thenHoldsOrder,
	},
	{
		Group: "The store", Keyword: "Then", Text: `batch "<ref>" does not hold order "<order>"`,
		Meaning: "The stored batch holds no line of that order.",
		Example: `Then batch "batch1" does not hold order "order2"`,
		Func:    thenDoesNotHoldOrder,
	},
	{
		Group: "The store", Keyword: "Then", Text: `the product "<sku>" has the batches "<refs>", in this order`,
		Meaning: "The references of the stored product's batches, comma separated, in the order they were added.",
		Example: `Then the product "LAMP" has the batches "b1, b2", in this order`,
		Func:    thenProductBatches,
	},
	{
		Group: "The store", Keyword: "Then", Text: `the product "<sku>" as loaded from the store has no pending events`,
		Meaning: "A unit of work that loads the product gets it with no events waiting to be published: publishing took them all, and loading records none.",
		Example: `Then the product "LAMP" as loaded from the store has no pending events`,
		Func:    thenLoadedNoEvents,
	},
	{
		Group: "The store", Keyword: "Then", Text: `a new product "<sku>" has no pending events`,
		Meaning: "A product just made (the domain's NewProduct, with no batches, not stored) has no events waiting to be published.",
		Example: `Then a new product "LAMP" has no pending events`,
		Func:    thenNewProductNoEvents,
	},
	{
		Group: "The store", Keyword: "Then", Text: `the product "<sku>" is at version <version>`,
		Meaning: "The stored product's version number.",
		Example: `Then the product "LAMP" is at version 8`,
		Func:    thenVersion,
	},
	{
		Group: "The store", Keyword: "Then", Text: `nothing changed in the store`,
		Meaning: "Every product, batch, allocation, version and store revision is as it was before the last When step.",
		Example: `Then nothing changed in the store`,
		Func:    thenNothingChanged,
	},
	{
		Group: "The store", Keyword: "Then", Text: `there is no product "<sku>"`,
		Meaning: "The store holds no product of that sku.",
		Example: `Then there is no product "NONEXISTENTSKU"`,
		Func:    thenNoProduct,
	},
	{
		Group: "The store", Keyword: "Then", Text: `no order is held twice`,
		Meaning: "No order (order id and sku) holds stock in more than one line, in any batch.",
		Example: `Then no order is held twice`,
		Func:    thenNoOrderTwice,
	},
	{
		Group: "The store", Keyword: "Then", Text: `there [was|were] <n> commit [attempt|attempts]`,
		Meaning: "Commit attempts the store saw from the first When step on, conflicting ones included.",
		Example: `Then there were 3 commit attempts`,
		Func:    thenCommitAttempts,
	},

	// Publications.
	{
		Group: "Publications", Keyword: "Then", Text: `nothing was published`,
		Meaning: "The stack published nothing to other systems from the first When step on.",
		Example: `Then nothing was published`,
		Func:    thenNothingPublished,
	},
	{
		Group: "Publications", Keyword: "Then", Text: `these were published, in this order:`,
		Meaning: "What the stack published to other systems from the first When step on (the book's chapter 11 sends Allocated to a broker), in order. Columns: channel, and event as \"the bus handled, in this order\" writes it.",
		Example: "Then these were published, in this order:\n| channel | event |\n| line_allocated | allocated: LAMP, order o1, batch b1 |",
		Func:    thenPublished,
	},

	// Mails.
	{
		Group: "Mails", Keyword: "Then", Text: `no mail was sent`,
		Meaning: "The mailer delivered nothing from the first When step on.",
		Example: `Then no mail was sent`,
		Func:    thenNoMail,
	},
	{
		Group: "Mails", Keyword: "Then", Text: `<n> [mail was|mails were] sent to "<address>"`,
		Meaning: "Counts the mails delivered to the address from the first When step on.",
		Example: `Then 500 mails were sent to "stock@made.com"`,
		Func:    thenMailsTo,
	},
	{
		Group: "Mails", Keyword: "Then", Text: `exactly one mail was sent, to "<address>", saying "<text>"`,
		Meaning: "From the first When step on the mailer delivered one mail, and that is its address and text.",
		Example: `Then exactly one mail was sent, to "stock@made.com", saying "Out of stock for POPULAR-CURTAINS"`,
		Func:    thenOneMail,
	},
	{
		Group: "Mails", Keyword: "Then", Text: `these mails were sent, in this order:`,
		Meaning: "Every mail the mailer delivered from the first When step on, one row each, in the order they were sent. Columns: to, text.",
		Example: "Then these mails were sent, in this order:\n| to | text |\n| stock@made.com | Out of stock for LAMP |",
		Func:    thenMailsInOrder,
	},
	{
		Group: "Mails", Keyword: "Then", Text: `each mail is about a different order that was told it is out of stock`,
		Meaning: "The mails of the last When step and its orders told out of stock match one to one, by the event that caused each mail.",
		Example: `Then each mail is about a different order that was told it is out of stock`,
		Func:    thenMailsMatchOrders,
	},

	// The bus.
	{
		Group: "The bus", Keyword: "Then", Text: `the bus handled, in this order:`,
		Meaning: "The events the bus handled from the first When step on, each once, in the order it first called a handler with them. One column, event: \"out of stock: SKU, order ID\", \"allocated: SKU, order ID, batch REF\", \"deallocated: SKU, order ID\" or \"note NAME\".",
		Example: "Then the bus handled, in this order:\n| event |\n| out of stock: B, order b1 |",
		Func:    thenHandledInOrder,
	},
	{
		Group: "The bus", Keyword: "Then", Text: `the bus handled these messages, in this order:`,
		Meaning: "Every message the bus handled from the first When step on, commands and events, in the order it finished them, as its trace reports them. One column, message: \"change batch quantity: REF to QTY\", \"allocate: SKU, order ID, qty QTY\", \"create batch: SKU, batch REF, qty QTY\", or an event as in the step above. A call that stops at an error ends with the message that failed.",
		Example: "Then the bus handled these messages, in this order:\n| message |\n| change batch quantity: batch1 to 25 |",
		Func:    thenTracedInOrder,
	},
	{
		Group: "The bus", Keyword: "Then", Text: `handling "<message>" failed with "<text>"`,
		Meaning: "The bus handled that message (written as in the step above) from the first When step on, and its handlers' errors contain the text.",
		Example: `Then handling "deallocated: LAMP, order o2" failed with "handler audit failed"`,
		Func:    thenTracedFailure,
	},
	{
		Group: "The bus", Keyword: "Then", Text: `the bus handled no events`,
		Meaning: "No handler was called from the first When step on.",
		Example: `Then the bus handled no events`,
		Func:    thenHandledNone,
	},
	{
		Group: "The bus", Keyword: "Then", Text: `the bus handled <n> ` + eventChoice + ` [event|events]`,
		Meaning: "Counts the distinct events of that type the bus handled from the first When step on.",
		Example: `Then the bus handled 500 OutOfStock events`,
		Func:    thenHandledCount,
	},
	{
		Group: "The bus", Keyword: "Then", Text: `every event was handled once by each of its handlers`,
		Meaning: "Some event was handled, and no handler was called twice with the same event.",
		Example: `Then every event was handled once by each of its handlers`,
		Func:    thenHandledOnce,
	},
	{
		Group: "The bus", Keyword: "Then", Text: `handler "<name>" was called <n> [time|times]`,
		Meaning: "Counts the calls of a handler the scenario subscribed, from the first When step on.",
		Example: `Then handler "second" was called 0 times`,
		Func:    thenHandlerCalls,
	},
	{
		Group: "The bus", Keyword: "Then", Text: `nothing was handled before the commit`,
		Meaning: "The last When step made a commit attempt, and when the store began its first one (sampled in the store's before-commit hook), the step had caused no handler call and no mail: events are handed to the bus only after the commit.",
		Example: `Then nothing was handled before the commit`,
		Func:    thenNothingBeforeCommit,
	},
	{
		Group: "The bus", Keyword: "Then", Text: `when handler "<name>" ran, batch "<ref>" already held order "<order>"`,
		Meaning: "Each time the handler that looks at the store ran, the stored batch held that order.",
		Example: `Then when handler "witness" ran, batch "b1" already held order "o1"`,
		Func:    thenWitnessSaw,
	},
}

// failures are the kinds of error "it fails with" names, by the words it uses.
var failures = []struct {
	words string
	err   error
}{
	{"out of stock", domain.ErrOutOfStock},
	{"an invalid sku", service.ErrInvalidSKU},
	{"an invalid order line", domain.ErrInvalidOrderLine},
	{"an order conflict", domain.ErrOrderConflict},
	{"an invalid batch", domain.ErrInvalidBatch},
	{"an unknown batch", domain.ErrUnknownBatch},
	{"a duplicate batch", domain.ErrDuplicateBatch},
	{"a concurrent update", service.ErrConcurrentUpdate},
	{"exhausted retries", service.ErrRetriesExhausted},
	{"a publishing error", service.ErrPublish},
	{"no handler", service.ErrNoHandler},
	{"a handler panic", service.ErrHandlerPanic},
}

func failureChoice() string {
	words := make([]string, len(failures))
	for i, f := range failures {
		words[i] = f.words
	}
	return "[" + strings.Join(words, "|") + "]"
}

// table reads a data table whose first row names exactly the given columns.
func table(t *godog.Table, columns ...string) ([]map[string]string, error) {
	if t == nil || len(t.Rows) == 0 {
		return nil, fmt.Errorf("the step needs a table with the columns %s", strings.Join(columns, ", "))
	}
	var header []string
	for _, c := range t.Rows[0].Cells {
		header = append(header, strings.TrimSpace(c.Value))
	}
	if !slices.Equal(header, columns) {
		return nil, fmt.Errorf("the table's columns are %s, want %s", strings.Join(header, ", "), strings.Join(columns, ", "))
	}
	var rows []map[string]string
	for _, r := range t.Rows[1:] {
		row := map[string]string{}
		for i, c := range r.Cells {
			row[columns[i]] = strings.TrimSpace(c.Value)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func orderLines(t *godog.Table) ([]domain.OrderLine, error) {
	rows, err := table(t, "order", "qty", "sku")
	if err != nil {
		return nil, err
	}
	lines := make([]domain.OrderLine, len(rows))
	for i, r := range rows {
		qty, err := strconv.Atoi(r["qty"])
		if err != nil {
			return nil, fmt.Errorf("row %d: qty %q is not a whole number", i+1, r["qty"])
		}
		lines[i] = domain.OrderLine{OrderID: r["order"], SKU: r["sku"], Qty: qty}
	}
	return lines, nil
}

func givenBatch(ctx context.Context, ref string, qty int, sku, when string) error {
	return addBatch(ctx, ref, qty, sku, eta(when))
}

func addBatch(ctx context.Context, ref string, qty int, sku string, eta time.Time) error {
	w := from(ctx)
	if err := service.AddBatch(w.ctx(ctx), w.stack(), ref, sku, qty, eta); err != nil {
		return fmt.Errorf("adding batch %q of %d %q: %w", ref, qty, sku, err)
	}
	return nil
}

func givenBatches(ctx context.Context, t *godog.Table) error {
	rows, err := table(t, "batch", "qty", "sku", "eta")
	if err != nil {
		return err
	}
	for i, r := range rows {
		qty, err := strconv.Atoi(r["qty"])
		if err != nil {
			return fmt.Errorf("row %d: qty %q is not a whole number", i+1, r["qty"])
		}
		arrival, ok := etas[r["eta"]]
		if !ok {
			return fmt.Errorf("row %d: eta %q is none of warehouse, today, tomorrow, later", i+1, r["eta"])
		}
		if err := addBatch(ctx, r["batch"], qty, r["sku"], arrival); err != nil {
			return err
		}
	}
	return nil
}

func givenAllocated(ctx context.Context, order string, qty int, sku string) error {
	o := from(ctx).allocate(ctx, order, sku, qty)
	if o.err != nil {
		return fmt.Errorf("allocating order %q of %d %q: %w", order, qty, sku, o.err)
	}
	return nil
}

func givenVersion(ctx context.Context, sku string, version int) error {
	return changeStored(ctx, sku, func(p *domain.Product) error { p.VersionNumber = version; return nil })
}

// changeStored changes a stored product directly in the store, as a test fixture does, without
// the service layer and without publishing anything.
func changeStored(ctx context.Context, sku string, change func(*domain.Product) error) error {
	w := from(ctx)
	tx, err := w.store.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	p, err := tx.Get(ctx, sku)
	if err != nil {
		return fmt.Errorf("product %q: %w", sku, err)
	}
	if err := change(p); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func givenPolicy(ctx context.Context, policy string) error {
	w := from(ctx)
	w.policy = map[string]service.ErrorPolicy{"propagates": service.Propagate, "collects": service.Collect}[policy]
	w.reconfigure()
	return nil
}

func givenRetries(ctx context.Context, n int, _ string) error {
	if n < 0 {
		return fmt.Errorf("a retry budget of %d: say \"without limit\" instead", n)
	}
	w := from(ctx)
	w.retries = n
	w.reconfigure()
	return nil
}

func givenUnlimitedRetries(ctx context.Context) error {
	w := from(ctx)
	w.retries = service.Unlimited
	w.reconfigure()
	return nil
}

func givenMailerDown(ctx context.Context) error {
	w := from(ctx)
	w.mailerDown = true
	w.reconfigure()
	return nil
}

func addHandler(ctx context.Context, h handlerSpec) error {
	w := from(ctx)
	for _, other := range w.handlers {
		if other.name == h.name {
			return fmt.Errorf("there is a handler %q already", h.name)
		}
	}
	if _, ok := eventTypes[h.event]; !ok {
		return fmt.Errorf("no event type %q", h.event)
	}
	w.handlers = append(w.handlers, h)
	w.reconfigure()
	return nil
}

func givenHandler(ctx context.Context, behaviour, name, event string) error {
	kind := map[string]handlerKind{"working": working, "failing": failing, "panicking": panicking}[behaviour]
	return addHandler(ctx, handlerSpec{name: name, event: event, kind: kind})
}

func givenRaisingHandler(ctx context.Context, name string, t *godog.Table) error {
	rows, err := table(t, "on", "raises")
	if err != nil {
		return err
	}
	raises := map[string][]string{}
	for _, r := range rows {
		for n := range strings.SplitSeq(r["raises"], ",") {
			if n = strings.TrimSpace(n); n != "" {
				raises[r["on"]] = append(raises[r["on"]], n)
			}
		}
	}
	return addHandler(ctx, handlerSpec{name: name, event: "Note", kind: raising, raises: raises})
}

func givenAllocatingHandler(ctx context.Context, name, note, order string, qty int, sku string) error {
	return addHandler(ctx, handlerSpec{name: name, event: "Note", kind: allocating, on: note,
		line: domain.OrderLine{OrderID: order, SKU: sku, Qty: qty}})
}

func givenWitness(ctx context.Context, name string) error {
	return addHandler(ctx, handlerSpec{name: name, event: "OutOfStock", kind: witnessing})
}

func givenAnotherWriter(ctx context.Context, sku string) error {
	w := from(ctx)
	w.hook.mu.Lock()
	defer w.hook.mu.Unlock()
	w.hook.touch = sku
	return nil
}

func givenHeldWriters(ctx context.Context, n int, sku string) error {
	if n < 2 {
		return fmt.Errorf("holding %d writers forces no interleaving: say 2 or more", n)
	}
	w := from(ctx)
	w.hook.mu.Lock()
	defer w.hook.mu.Unlock()
	w.hook.holdN, w.hook.holdSKU = n, sku
	return nil
}

func whenAllocate(ctx context.Context, order string, qty int, sku string) error {
	w := from(ctx)
	w.begin(fmt.Sprintf("I allocate order %q of %d %q", order, qty, sku))
	o := w.allocate(ctx, order, sku, qty)
	w.outcomes, w.err = []outcome{o}, o.err
	return nil
}

func whenAddBatch(ctx context.Context, ref string, qty int, sku, when string) error {
	w := from(ctx)
	w.begin(fmt.Sprintf("I add a batch %q of %d %q %s", ref, qty, sku, when))
	w.err = service.AddBatch(w.ctx(ctx), w.stack(), ref, sku, qty, eta(when))
	return nil
}

func whenUnitOfWork(ctx context.Context, t *godog.Table) error {
	return unitOfWork(ctx, "commits", t)
}

func whenUnitOfWorkFails(ctx context.Context, ending string, t *godog.Table) error {
	return unitOfWork(ctx, ending, t)
}

// errWork is what the work of "one unit of work allocates, then fails" returns.
var errWork = errors.New("the work failed")

func unitOfWork(ctx context.Context, ending string, t *godog.Table) error {
	lines, err := orderLines(t)
	if err != nil {
		return err
	}
	w := from(ctx)
	var said []string
	for _, l := range lines {
		said = append(said, fmt.Sprintf("%s of %d %s", l.OrderID, l.Qty, l.SKU))
	}
	w.begin("one unit of work allocates " + strings.Join(said, ", ") + ", then " + ending)
	uow := w.stack()
	run := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%v", r)
			}
		}()
		return uow.Do(w.ctx(ctx), func(ctx context.Context, repo service.Repository) error {
			w.outcomes = w.outcomes[:0] // a retried attempt starts again
			for _, l := range lines {
				p, err := repo.Get(ctx, l.SKU)
				if errors.Is(err, service.ErrNotFound) {
					return fmt.Errorf("%w %s", service.ErrInvalidSKU, l.SKU)
				}
				if err != nil {
					return err
				}
				o := outcome{order: l.OrderID, sku: l.SKU, qty: l.Qty}
				o.ref, o.err = p.Allocate(l)
				w.outcomes = append(w.outcomes, o)
				if o.err != nil && !errors.Is(o.err, domain.ErrOutOfStock) {
					return o.err
				}
			}
			switch ending {
			case "fails":
				return errWork
			case "panics":
				panic("the work panicked")
			}
			return nil
		})
	}
	w.err = run()
	return nil
}

func whenLoadOnly(ctx context.Context, sku string) error {
	w := from(ctx)
	w.begin(fmt.Sprintf("a later unit of work loads %q and commits without changes", sku))
	w.err = w.stack().Do(w.ctx(ctx), func(ctx context.Context, repo service.Repository) error {
		_, err := repo.Get(ctx, sku)
		return err
	})
	return nil
}

func whenWriters(ctx context.Context, writers, orders, qty int, sku string) error {
	if writers < 1 || orders < 1 {
		return fmt.Errorf("%d writers sending %d orders: both must be at least 1", writers, orders)
	}
	w := from(ctx)
	w.begin(fmt.Sprintf("%d writers send %d orders of %d %q at the same time", writers, orders, qty, sku))
	uow := w.stack()
	wctx, cancel := context.WithTimeout(w.ctx(ctx), writersTimeout)
	defer cancel()
	results := make([]outcome, orders)
	var wg sync.WaitGroup
	for k := range writers {
		wg.Go(func() {
			for i := k; i < orders; i += writers {
				o := outcome{order: "order-" + strconv.Itoa(i+1), sku: sku, qty: qty}
				o.ref, o.err = service.Allocate(wctx, uow, o.order, sku, qty)
				results[i] = o
			}
		})
	}
	wg.Wait()
	w.outcomes = results
	var errs []error
	for _, o := range results {
		errs = append(errs, o.err)
	}
	w.err = errors.Join(errs...)
	if err := wctx.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("the writers had not finished after %v: is a writer held waiting for others that never load?", writersTimeout)
	}
	return nil
}

func whenBusHandles(ctx context.Context, name string) error {
	w := from(ctx)
	w.begin(fmt.Sprintf("the bus handles note %q", name))
	w.err = w.stack().Bus().Handle(w.ctx(ctx), w.note(name))
	return nil
}

func whenChangeQuantity(ctx context.Context, ref string, qty int) error {
	w := from(ctx)
	w.begin(fmt.Sprintf("I change the quantity of batch %q to %d", ref, qty))
	uow := w.stack()
	w.err = uow.Bus().Handle(w.ctx(ctx), domain.ChangeBatchQuantity{Meta: domain.Meta{ID: w.nextID()}, Ref: ref, Qty: qty})
	return nil
}

func whenServiceChangesQuantity(ctx context.Context, ref string, qty int) error {
	w := from(ctx)
	w.begin(fmt.Sprintf("the service layer changes the quantity of batch %q to %d", ref, qty))
	w.err = service.ChangeBatchQuantity(w.ctx(ctx), w.stack(), ref, qty)
	return nil
}

// errNoWhen is what a Then step that compares with the last When step says when there was none.
var errNoWhen = errors.New("this step checks what the last When step did, and no When step ran")

// last returns the outcome of the last allocation of the last When step.
func (w *world) last() (outcome, error) {
	if len(w.outcomes) == 0 {
		return outcome{}, fmt.Errorf("the last When step (%s) allocated nothing", w.action)
	}
	return w.outcomes[len(w.outcomes)-1], nil
}

func thenReturnsBatch(ctx context.Context, ref string) error {
	o, err := from(ctx).last()
	if err != nil {
		return err
	}
	if o.err != nil || o.ref != ref {
		return fmt.Errorf("allocating %s returned batch %q and error %v, want batch %q and no error", o.order, o.ref, o.err, ref)
	}
	return nil
}

func thenSucceeds(ctx context.Context) error {
	w := from(ctx)
	if w.err != nil {
		return fmt.Errorf("%s failed: %w", w.action, w.err)
	}
	return nil
}

func thenToldOutOfStock(ctx context.Context, sku string) error {
	o, err := from(ctx).last()
	if err != nil {
		return err
	}
	if !errors.Is(o.err, domain.ErrOutOfStock) || o.ref != "" || !strings.Contains(o.err.Error(), sku) {
		return fmt.Errorf("allocating %s returned batch %q and error %v, want no batch and an out-of-stock error naming %s", o.order, o.ref, o.err, sku)
	}
	return nil
}

func thenTold(ctx context.Context, text string) error {
	w := from(ctx)
	if w.err == nil || !strings.Contains(w.err.Error(), text) {
		return fmt.Errorf("%s returned error %v, want an error containing %q", w.action, w.err, text)
	}
	return nil
}

func thenFailsWith(ctx context.Context, kind string) error {
	w := from(ctx)
	for _, f := range failures {
		if f.words == kind {
			if !errors.Is(w.err, f.err) {
				return fmt.Errorf("%s returned error %v, want one that is %q", w.action, w.err, f.err)
			}
			return nil
		}
	}
	return fmt.Errorf("no kind of failure %q", kind)
}

func (w *world) count(is func(outcome) bool) int {
	n := 0
	for _, o := range w.outcomes {
		if is(o) {
			n++
		}
	}
	return n
}

func (w *world) checkCount(what string, want int, is func(outcome) bool) error {
	if got := w.count(is); got != want {
		return fmt.Errorf("%d of the %d allocations of the last When step %s, want %d", got, len(w.outcomes), what, want)
	}
	return nil
}

func thenCountAllocated(ctx context.Context, n int, _ string) error {
	return from(ctx).checkCount("returned a batch", n, func(o outcome) bool { return o.err == nil && o.ref != "" })
}

func thenCountOutOfStock(ctx context.Context, n int, _ string) error {
	return from(ctx).checkCount("were out of stock", n, func(o outcome) bool { return errors.Is(o.err, domain.ErrOutOfStock) })
}

func thenCountConflicts(ctx context.Context, n int, _ string) error {
	return from(ctx).checkCount("gave up on a concurrent update", n, func(o outcome) bool {
		return errors.Is(o.err, service.ErrConcurrentUpdate)
	})
}

func thenAvailable(ctx context.Context, ref string, n int) error {
	_, b, err := from(ctx).batch(ref)
	if err != nil {
		return err
	}
	if got := b.AvailableQuantity(); got != n {
		return fmt.Errorf("batch %q has %d available, want %d", ref, got, n)
	}
	return nil
}

func thenHoldsCount(ctx context.Context, ref string, n int, _ string) error {
	_, b, err := from(ctx).batch(ref)
	if err != nil {
		return err
	}
	if got := b.Allocations(); got != n {
		return fmt.Errorf("batch %q holds %d orders (%v), want %d", ref, got, b.Lines(), n)
	}
	return nil
}

func thenHoldsOrder(ctx context.Context, ref, order string) error {
	p, b, err := from(ctx).batch(ref)
	if err != nil {
		return err
	}
	if _, ok := b.Holds(order, p.SKU); !ok {
		return fmt.Errorf("batch %q does not hold order %q; it holds %v", ref, order, b.Lines())
	}
	return nil
}

func thenVersion(ctx context.Context, sku string, version int) error {
	p, ok := from(ctx).store.Product(sku)
	if !ok {
		return fmt.Errorf("no product %q is stored", sku)
	}
	if p.VersionNumber != version {
		return fmt.Errorf("product %q is at version %d, want %d", sku, p.VersionNumber, version)
	}
	return nil
}

func thenNothingChanged(ctx context.Context) error {
	w := from(ctx)
	if !w.started {
		return errNoWhen
	}
	if now := w.storeState(false); now != w.before {
		return fmt.Errorf("the store changed during %q:\nbefore:\n%safter:\n%s", w.action, indent(w.before), indent(now))
	}
	return nil
}

func thenNoProduct(ctx context.Context, sku string) error {
	if _, ok := from(ctx).store.Product(sku); ok {
		return fmt.Errorf("a product %q is stored", sku)
	}
	return nil
}

func thenNoOrderTwice(ctx context.Context) error {
	w := from(ctx)
	held := map[[2]string][]string{}
	for _, sku := range w.store.SKUs() {
		p, _ := w.store.Product(sku)
		for _, b := range p.Batches {
			for _, l := range b.Lines() {
				key := [2]string{l.OrderID, l.SKU}
				held[key] = append(held[key], b.Reference)
			}
		}
	}
	for key, batches := range held {
		if len(batches) > 1 {
			return fmt.Errorf("order %q of %q is held %d times, in batches %v", key[0], key[1], len(batches), batches)
		}
	}
	return nil
}

func thenCommitAttempts(ctx context.Context, _ string, n int, _ string) error {
	w := from(ctx)
	if got := w.commits.Load() - w.fromCommit; got != int64(n) {
		return fmt.Errorf("the store saw %d commit attempts from the first When step on, want %d", got, n)
	}
	return nil
}

func thenNoMail(ctx context.Context) error {
	if mails := from(ctx).mails(); len(mails) > 0 {
		return fmt.Errorf("%d mails were sent, want none; the first says %q to %s", len(mails), mails[0].Body, mails[0].To)
	}
	return nil
}

func thenMailsTo(ctx context.Context, n int, _, address string) error {
	got := 0
	for _, m := range from(ctx).mails() {
		if m.To == address {
			got++
		}
	}
	if got != n {
		return fmt.Errorf("%d mails were sent to %s, want %d", got, address, n)
	}
	return nil
}

func thenOneMail(ctx context.Context, address, text string) error {
	mails := from(ctx).mails()
	if len(mails) != 1 {
		var said []string
		for _, m := range mails {
			said = append(said, fmt.Sprintf("%q to %s", m.Body, m.To))
		}
		return fmt.Errorf("%d mails were sent (%s), want exactly one", len(mails), clip(said, 5))
	}
	if m := mails[0]; m.To != address || m.Body != text {
		return fmt.Errorf("the mail says %q to %s, want %q to %s", m.Body, m.To, text, address)
	}
	return nil
}

func thenMailsMatchOrders(ctx context.Context) error {
	w := from(ctx)
	if !w.started {
		return errNoWhen
	}
	told := map[string]bool{}
	for _, o := range w.outcomes {
		if errors.Is(o.err, domain.ErrOutOfStock) {
			told[o.order] = true
		}
	}
	mailed := map[string]bool{}
	for _, m := range w.mailer.Mails()[w.atStart.mails:] {
		e, ok := m.Cause.(domain.OutOfStock)
		switch {
		case !ok:
			return fmt.Errorf("a mail to %s saying %q was caused by %T, not by an out-of-stock event", m.To, m.Body, m.Cause)
		case !told[e.OrderID]:
			return fmt.Errorf("a mail is about order %q, which was not told it is out of stock", e.OrderID)
		case mailed[e.OrderID]:
			return fmt.Errorf("two mails are about order %q", e.OrderID)
		}
		mailed[e.OrderID] = true
	}
	if len(mailed) != len(told) {
		return fmt.Errorf("%d orders were told they are out of stock, but mails are about %d of them", len(told), len(mailed))
	}
	return nil
}

func thenHandledInOrder(ctx context.Context, t *godog.Table) error {
	rows, err := table(t, "event")
	if err != nil {
		return err
	}
	var want, got []string
	for _, r := range rows {
		want = append(want, r["event"])
	}
	for _, e := range from(ctx).handled() {
		got = append(got, describe(e))
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("the bus handled, in this order:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	return nil
}

func thenHandledNone(ctx context.Context) error {
	if ds := from(ctx).deliveries(); len(ds) > 0 {
		return fmt.Errorf("the bus called %d handlers, want none; the first got %s", len(ds), describe(ds[0].event))
	}
	return nil
}

func thenHandledCount(ctx context.Context, n int, event, _ string) error {
	got := 0
	for _, e := range from(ctx).handled() {
		if reflect.TypeOf(e) == eventTypes[event] {
			got++
		}
	}
	if got != n {
		return fmt.Errorf("the bus handled %d %s events, want %d", got, event, n)
	}
	return nil
}

func thenHandledOnce(ctx context.Context) error {
	ds := from(ctx).deliveries()
	if len(ds) == 0 {
		return errors.New("the bus handled no events")
	}
	calls := map[[2]string]int{}
	for _, d := range ds {
		key := [2]string{d.event.Identity().ID, d.handler}
		if calls[key]++; calls[key] > 1 {
			return fmt.Errorf("the bus called %s with %s (%s) %d times", d.handler, describe(d.event), key[0], calls[key])
		}
	}
	return nil
}

func thenHandlerCalls(ctx context.Context, name string, n int, _ string) error {
	got := 0
	for _, d := range from(ctx).deliveries() {
		if d.handler == name {
			got++
		}
	}
	if got != n {
		return fmt.Errorf("handler %q was called %d times, want %d", name, got, n)
	}
	return nil
}

func thenNothingBeforeCommit(ctx context.Context) error {
	w := from(ctx)
	if !w.started {
		return errNoWhen
	}
	w.commitMu.Lock()
	atCommit := w.atCommit
	w.commitMu.Unlock()
	if atCommit == nil {
		return fmt.Errorf("the last When step (%s) made no commit attempt", w.action)
	}
	if *atCommit != *w.atStart {
		return fmt.Errorf("before the first commit attempt of %s, %d handler calls and %d mails had happened, want none",
			w.action, atCommit.deliveries-w.atStart.deliveries, atCommit.mails-w.atStart.mails)
	}
	return nil
}

func thenWitnessSaw(ctx context.Context, name, ref, order string) error {
	seen := from(ctx).journal.seenBy(name)
	if len(seen) == 0 {
		return fmt.Errorf("handler %q never ran", name)
	}
	for i, held := range seen {
		if !slices.Contains(held, order+"@"+ref) {
			return fmt.Errorf("when handler %q ran the %d. time, the store held %v, not order %q in batch %q", name, i+1, held, order, ref)
		}
	}
	return nil
}

func thenNothingPublished(ctx context.Context) error {
	if pub := from(ctx).published(); len(pub) > 0 {
		return fmt.Errorf("%d events were published, want none; the first is %s on %s", len(pub), describe(pub[0].Event), pub[0].Channel)
	}
	return nil
}

func thenPublished(ctx context.Context, t *godog.Table) error {
	rows, err := table(t, "channel", "event")
	if err != nil {
		return err
	}
	var want, got []string
	for _, r := range rows {
		want = append(want, r["channel"]+": "+r["event"])
	}
	for _, p := range from(ctx).published() {
		got = append(got, p.Channel+": "+describe(p.Event))
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("published, in this order:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	return nil
}

func thenTracedInOrder(ctx context.Context, t *godog.Table) error {
	rows, err := table(t, "message")
	if err != nil {
		return err
	}
	var want, got []string
	for _, r := range rows {
		want = append(want, r["message"])
	}
	for _, m := range from(ctx).traced() {
		got = append(got, describeMessage(m.msg))
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("the bus handled these messages, in this order:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	return nil
}

func thenTracedFailure(ctx context.Context, message, text string) error {
	var seen []string
	for _, m := range from(ctx).traced() {
		if describeMessage(m.msg) != message {
			seen = append(seen, describeMessage(m.msg))
			continue
		}
		if m.err == nil || !strings.Contains(m.err.Error(), text) {
			return fmt.Errorf("handling %q returned error %v, want an error containing %q", message, m.err, text)
		}
		return nil
	}
	return fmt.Errorf("the bus did not handle %q; it handled: %s", message, clip(seen, 10))
}

// lone returns the batch on its own with the reference.
func (w *world) loneBatch(ref string) (*domain.Batch, error) {
	b, ok := w.lone[ref]
	if !ok {
		return nil, fmt.Errorf("there is no batch %q on its own: make it with `Given a batch %q of ... on its own`", ref, ref)
	}
	return b, nil
}

func givenLoneBatch(ctx context.Context, ref string, qty int, sku string) error {
	w := from(ctx)
	if _, ok := w.lone[ref]; ok {
		return fmt.Errorf("there is a batch %q on its own already", ref)
	}
	w.lone[ref] = domain.NewBatch(ref, sku, qty, time.Time{})
	return nil
}

func whenLoneAllocates(ctx context.Context, ref, order string, qty int, sku string) error {
	b, err := from(ctx).loneBatch(ref)
	if err != nil {
		return err
	}
	b.Allocate(domain.OrderLine{OrderID: order, SKU: sku, Qty: qty})
	return nil
}

func whenLoneDeallocates(ctx context.Context, ref, order string, qty int, sku string) error {
	b, err := from(ctx).loneBatch(ref)
	if err != nil {
		return err
	}
	b.Deallocate(domain.OrderLine{OrderID: order, SKU: sku, Qty: qty})
	return nil
}

func thenLoneCanTake(ctx context.Context, ref, can, order string, qty int, sku string) error {
	b, err := from(ctx).loneBatch(ref)
	if err != nil {
		return err
	}
	line := domain.OrderLine{OrderID: order, SKU: sku, Qty: qty}
	if got, want := b.CanAllocate(line), can == "can"; got != want {
		return fmt.Errorf("batch %q of %s with %d available: CanAllocate(%+v) = %v, want %v", ref, b.SKU, b.AvailableQuantity(), line, got, want)
	}
	return nil
}

func thenLoneAvailable(ctx context.Context, ref string, n int) error {
	b, err := from(ctx).loneBatch(ref)
	if err != nil {
		return err
	}
	if got := b.AvailableQuantity(); got != n {
		return fmt.Errorf("batch %q on its own has %d available (it holds %v), want %d", ref, got, b.Lines(), n)
	}
	return nil
}

func thenLoneHolds(ctx context.Context, ref, holds, order string) error {
	b, err := from(ctx).loneBatch(ref)
	if err != nil {
		return err
	}
	_, held := b.Holds(order, b.SKU)
	if want := holds == "holds"; held != want {
		return fmt.Errorf("batch %q on its own holds %v; holding order %q: %v, want %v", ref, b.Lines(), order, held, want)
	}
	return nil
}

func thenDoesNotHoldOrder(ctx context.Context, ref, order string) error {
	p, b, err := from(ctx).batch(ref)
	if err != nil {
		return err
	}
	if _, ok := b.Holds(order, p.SKU); ok {
		return fmt.Errorf("batch %q holds order %q; it holds %v", ref, order, b.Lines())
	}
	return nil
}

func thenProductBatches(ctx context.Context, sku, refs string) error {
	p, ok := from(ctx).store.Product(sku)
	if !ok {
		return fmt.Errorf("no product %q is stored", sku)
	}
	var want, got []string
	for r := range strings.SplitSeq(refs, ",") {
		if r = strings.TrimSpace(r); r != "" {
			want = append(want, r)
		}
	}
	for _, b := range p.Batches {
		got = append(got, b.Reference)
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("product %q has the batches %v, want %v", sku, got, want)
	}
	return nil
}

func thenLoadedNoEvents(ctx context.Context, sku string) error {
	w := from(ctx)
	tx, err := w.store.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	p, err := tx.Get(ctx, sku)
	if err != nil {
		return fmt.Errorf("loading product %q: %w", sku, err)
	}
	if len(p.Events) > 0 {
		return fmt.Errorf("product %q as loaded has %d pending events; the first is %s", sku, len(p.Events), describe(p.Events[0]))
	}
	return nil
}

func thenNewProductNoEvents(_ context.Context, sku string) error {
	if p := domain.NewProduct(sku, nil); len(p.Events) > 0 {
		return fmt.Errorf("a new product %q has %d pending events; the first is %s", sku, len(p.Events), describe(p.Events[0]))
	}
	return nil
}

func thenMailsInOrder(ctx context.Context, t *godog.Table) error {
	rows, err := table(t, "to", "text")
	if err != nil {
		return err
	}
	var want, got []string
	for _, r := range rows {
		want = append(want, fmt.Sprintf("to %s: %q", r["to"], r["text"]))
	}
	for _, m := range from(ctx).mails() {
		got = append(got, fmt.Sprintf("to %s: %q", m.To, m.Body))
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("these mails were sent, in this order:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	return nil
}
