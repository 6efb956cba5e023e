package steps

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cucumber/godog"

	"github.com/stockbus/stockbus/domain"
)

// groups are the headings the README lists the steps under, in order. Each step names its group;
// the steps themselves live in a file per concern (allocation.go, out_of_stock.go, ...).
var groups = []string{
	"Stock",
	"A batch on its own",
	"The stack",
	"Other writers",
	"Actions",
	"What the caller is told",
	"The store",
	"Publications",
	"Mails",
	"The bus",
}

// vocabulary is every step, in the order the README lists them: by group, and within a group in
// the order of the concerns below.
var vocabulary = byGroup(allocationSteps, batchSteps, outOfStockSteps, publicationSteps,
	concurrencySteps, chainSteps, badInputSteps)

// byGroup joins the steps of every concern and orders them by group, keeping their order within
// a group. A step of a group that is not in groups panics: the README would not list it.
func byGroup(concerns ...[]Def) []Def {
	all := slices.Concat(concerns...)
	rank := func(d Def) int {
		i := slices.Index(groups, d.Group)
		if i < 0 {
			panic(fmt.Sprintf("steps: %s %q is in group %q, which is not in groups", d.Keyword, d.Text, d.Group))
		}
		return i
	}
	slices.SortStableFunc(all, func(a, b Def) int { return rank(a) - rank(b) })
	return all
}

// stageUnderWhen ends the meaning of every step that sets the stage under any keyword.
const stageUnderWhen = " Under When it is the same: it sets the stage, does not start the count \"from the first When step on\", and keeps no error (a rejection fails the step)."

// errNoWhen is what a Then step that compares with the last When step says when there was none.
var errNoWhen = errors.New("this step checks what the last When step did, and no When step ran")

// last returns the outcome of the last allocation of the last When step.
func (w *world) last() (outcome, error) {
	if len(w.outcomes) == 0 {
		return outcome{}, fmt.Errorf("the last When step (%s) allocated nothing", w.action)
	}
	return w.outcomes[len(w.outcomes)-1], nil
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
