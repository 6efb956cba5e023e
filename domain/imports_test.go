package domain_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const modulePath = "github.com/stockbus/stockbus"

// TestDomainImportsOnlyTheStandardLibrary keeps the dependency direction: domain is the bottom
// of the module and must not import any package of it, nor anything outside the standard library.
func TestDomainImportsOnlyTheStandardLibrary(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		require.NoError(t, err)
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		require.NoError(t, err, "parse %s", name)
		checked++
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			require.NoError(t, err)
			if !isStdlib(path) {
				t.Errorf("%s imports %q: package domain may import only the standard library", fset.Position(imp.Pos()), path)
			}
		}
	}
	require.NotZero(t, checked, "no non-test Go files found in the package directory")
}

// isStdlib reports whether path names a standard library package: no dot in its first element
// (as the go command decides), and not a package of this module.
func isStdlib(path string) bool {
	if path == modulePath || strings.HasPrefix(path, modulePath+"/") {
		return false
	}
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func TestIsStdlib(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"fmt", true},
		{"math/rand/v2", true},
		{"cmp", true},
		{modulePath, false},
		{modulePath + "/service", false},
		{"github.com/stretchr/testify/require", false},
		{"golang.org/x/exp/slices", false},
		{"example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := isStdlib(tt.path); got != tt.want {
				t.Errorf("isStdlib(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}
